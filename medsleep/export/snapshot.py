"""What an export reads: hot readings, active summaries, the archived readings behind them and
the audit chain — streamed in batches from one consistent snapshot of the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from medsleep.archive.files import read_archived_readings
from medsleep.archive.index import Cell, in_cells
from medsleep.export.output import ExportError
from medsleep.export.updated import batches_stored_since, made_since, stored_since
from medsleep.fhir.build import ArchiveFileFacts, AuditFacts, RunFacts, SummaryFacts
from medsleep.store.bodies import texts_of
from medsleep.store.resource_ranges import readings_of
from medsleep.store.tables import (
    ARCHIVE_FILE,
    AUDIT_EVENT,
    HOT_STATES,
    READING,
    RUN,
    SUMMARY,
    ArchiveState,
    SummaryState,
)

_reading = READING
_summary = SUMMARY
_run = RUN
_archive = ARCHIVE_FILE
_audit = AUDIT_EVENT

CURRENT = HOT_STATES
BATCH = 5000
_IN = 500


@dataclass(frozen=True)
class ExportScope:
    """Which data an export covers. Readings by their time, summaries when their bucket
    overlaps ``[since_ms, until_ms)``; with ``updated_since_ms`` (Bulk Data ``_since``), only
    what medsleep stored or made from then on (see ``export.updated``)."""

    patient: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    updated_since_ms: int | None = None


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees one consistent state of the store for all its queries, so a
    consolidation committing mid-export cannot make a reading appear both hot and summarised.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
            return
        # pysqlite starts transactions only for writes; an explicit BEGIN pins the read
        # snapshot (WAL) at the first query until the connection rolls back on exit.
        driver = conn.connection.driver_connection
        if driver is not None and not driver.in_transaction:
            driver.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


def _scoped(query: Select[Any], scope: ExportScope) -> Select[Any]:
    if scope.patient is not None:
        query = query.where(_reading.c.patient == scope.patient)
    if scope.since_ms is not None:
        query = query.where(_reading.c.effective_ms >= scope.since_ms)
    if scope.until_ms is not None:
        query = query.where(_reading.c.effective_ms < scope.until_ms)
    if scope.updated_since_ms is not None:
        query = query.where(stored_since(_reading.c.batch_id, scope.updated_since_ms))
    return query


def _batches(conn: Connection, query: Select[Any]) -> Iterator[Sequence[Any]]:
    result = conn.execution_options(yield_per=BATCH).execute(query)
    yield from result.partitions()


def one_line(text: str) -> str:
    """A JSON text on one line. JSON strings cannot hold raw line breaks, so removing them
    changes only whitespace: every other byte of the original stays as it was."""
    if "\n" in text or "\r" in text:
        return text.replace("\r", "").replace("\n", "")
    return text


def resolved_subject(text: str, patient: str, version: str) -> str:
    """The original JSON with a ``urn:uuid`` subject (resolved inside its Bundle when it was
    ingested) written as ``Patient/{patient}``, so the line stands on its own in an NDJSON
    file; every other original is returned untouched. A resource whose version was its content
    digest gets it as ``meta.versionId``: the rewrite must not make it a new version."""
    if '"urn:uuid:' not in text:
        return text
    resource = orjson.loads(text)
    subject = resource.get("subject") if isinstance(resource, dict) else None
    if not isinstance(subject, dict):
        return text
    reference = subject.get("reference")
    if not (isinstance(reference, str) and reference.startswith("urn:uuid:")):
        return text
    subject["reference"] = f"Patient/{patient}"
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        meta = resource["meta"] = {}
    if "versionId" not in meta and "lastUpdated" not in meta:
        meta["versionId"] = version
    return orjson.dumps(resource).decode()


def iter_hot_resources(conn: Connection, scope: ExportScope) -> Iterator[list[str]]:
    """Original JSON of each current (raw or retained) resource in scope, once per resource
    although a panel backs several readings; batches of NDJSON lines."""
    query = _scoped(
        select(
            _reading.c.resource_key,
            _reading.c.resource_version,
            _reading.c.patient,
        ).where(_reading.c.state.in_(CURRENT)),
        scope,
    ).order_by(_reading.c.resource_key)
    previous = None
    for batch in _batches(conn, query):
        pairs = []
        patients = []
        for key, version, patient in batch:
            if key != previous:  # readings of one resource are adjacent in key order
                pairs.append((str(key), str(version)))
                patients.append(str(patient))
                previous = key
        texts = texts_of(conn, pairs)
        yield [
            one_line(resolved_subject(texts[pair], patient, pair[1]))
            for pair, patient in zip(pairs, patients, strict=True)
        ]


def iter_hot_rows(conn: Connection, scope: ExportScope) -> Iterator[Sequence[Any]]:
    """Every current reading in scope, by patient, code and time (one row per reading)."""
    query = _scoped(select(_reading).where(_reading.c.state.in_(CURRENT)), scope).order_by(
        _reading.c.patient, _reading.c.code, _reading.c.effective_ms, _reading.c.id
    )
    yield from _batches(conn, query)


def excluded_counts(conn: Connection, scope: ExportScope) -> dict[str, int]:
    """Readings in scope that are not current data (superseded or retracted versions)."""
    query = _scoped(
        select(_reading.c.state, func.count())
        .where(_reading.c.state.notin_(CURRENT))
        .group_by(_reading.c.state),
        scope,
    )
    return {f"{state}_readings": int(n) for state, n in conn.execute(query)}


class SummaryRow(NamedTuple):
    """An active summary: the facts the FHIR builders need, its archive files, and the row
    itself for the tables export."""

    facts: SummaryFacts
    files: tuple[str, ...]
    row: Any

    @property
    def cell(self) -> Cell:
        f = self.facts
        return (f.patient, f.code, f.unit, f.band, f.bucket_start_ms)


_FACT_COLUMNS = tuple(SummaryFacts._fields)
_SUMMARY_COLUMNS = (*_FACT_COLUMNS, "first_value", "last_value", "values_json", "archive_files")
_FILES = len(_SUMMARY_COLUMNS) - 1


def code_systems(conn: Connection, root: Path) -> dict[str, str]:
    """The system each code was received with, for summaries (which keep only the code):
    from the hot store and the code columns of every archive file still on disk. A code seen
    with no system, or with two, maps to nothing rather than to a guess."""
    seen: dict[str, set[str]] = {}
    pairs = select(_reading.c.code, _reading.c.code_system).distinct()
    for code, system in conn.execute(pairs):
        seen.setdefault(str(code), set()).add(str(system))
    names = select(_archive.c.name).where(_archive.c.state != ArchiveState.PURGED)
    for name in conn.execute(names).scalars():
        try:
            table = pq.read_table(root / str(name), columns=["code", "code_system"])
        except (OSError, pa.ArrowException):
            continue  # archive verify reports unreadable files; a label is not worth failing
        for row in table.group_by(["code", "code_system"]).aggregate([]).to_pylist():
            seen.setdefault(str(row["code"]), set()).add(str(row["code_system"]))
    return {code: next(iter(s)) for code, s in seen.items() if len(s) == 1 and next(iter(s))}


def iter_summaries(conn: Connection, scope: ExportScope) -> Iterator[list[SummaryRow]]:
    """Active summaries whose bucket overlaps the scope, by patient, code and time."""
    s = _summary.c
    query = select(*(s[name] for name in _SUMMARY_COLUMNS)).where(s.state == SummaryState.ACTIVE)
    if scope.patient is not None:
        query = query.where(s.patient == scope.patient)
    if scope.since_ms is not None:
        query = query.where(s.bucket_end_ms > scope.since_ms)
    if scope.until_ms is not None:
        query = query.where(s.bucket_start_ms < scope.until_ms)
    if scope.updated_since_ms is not None:
        query = query.where(made_since(s.run_id, scope.updated_since_ms))
    query = query.order_by(s.patient, s.code, s.bucket_start_ms, s.band, s.id)
    width = len(_FACT_COLUMNS)
    make = SummaryFacts._make
    for batch in _batches(conn, query):
        yield [SummaryRow(make(r[:width]), tuple(orjson.loads(r[_FILES])), r) for r in batch]


def load_runs(conn: Connection) -> dict[int, RunFacts]:
    """Every run (one a night: few) by id."""
    rows = conn.execute(
        select(_run.c.id, _run.c.policy_digest, _run.c.started_ms, _run.c.finished_ms)
    )
    return {
        int(r.id): RunFacts(int(r.id), r.policy_digest, int(r.finished_ms or r.started_ms))
        for r in rows
    }


@dataclass(frozen=True)
class ArchiveRecord:
    facts: ArchiveFileFacts
    state: str


class ArchiveRecords:
    """archive_file rows looked up by name, in batches, cached."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._known: dict[str, ArchiveRecord | None] = {}

    def load(self, names: Iterable[str]) -> None:
        wanted = sorted({n for n in names if n not in self._known})
        for start in range(0, len(wanted), _IN):
            part = wanted[start : start + _IN]
            for name in part:
                self._known[name] = None
            query = select(_archive.c.name, _archive.c.sha256, _archive.c.run_id, _archive.c.state)
            for r in self._conn.execute(query.where(_archive.c.name.in_(part))):
                self._known[r.name] = ArchiveRecord(
                    ArchiveFileFacts(r.name, r.sha256, int(r.run_id)), r.state
                )

    def get(self, name: str) -> ArchiveRecord | None:
        if name not in self._known:
            self.load([name])
        return self._known[name]

    def facts(self, names: Iterable[str]) -> list[ArchiveFileFacts]:
        out = []
        for name in names:
            record = self.get(name)
            out.append(record.facts if record else ArchiveFileFacts(name, None, None))
        return out

    def clear(self) -> None:
        self._known.clear()


@dataclass
class ArchivedScope:
    """The cells of one patient's in-scope summaries, per archive file that holds them."""

    patient: str | None = None
    cells_by_file: dict[str, set[Cell]] = field(default_factory=dict)

    def add(self, summary: SummaryRow) -> None:
        for name in summary.files:
            self.cells_by_file.setdefault(name, set()).add(summary.cell)


@dataclass(frozen=True)
class ArchivedBatch:
    """The rows of one archive file that an export takes, with what the hot store says."""

    name: str
    rows: pd.DataFrame
    hot_versions: dict[str, set[str]]  # resource_key -> current versions in the hot store
    hot_parts: set[tuple[str, int]]  # (resource_key, part) current in the hot store


def iter_archived(
    conn: Connection,
    root: Path,
    cells: ArchivedScope,
    records: ArchiveRecords,
    scope: ExportScope,
    purged: list[str],
) -> Iterator[ArchivedBatch]:
    """The archived readings behind one patient's in-scope summaries, file by file, each file
    checked against its recorded sha256. Purged files are appended to ``purged``."""
    records.load(cells.cells_by_file)
    since = scope.updated_since_ms
    recent = None if since is None else batches_stored_since(conn, since)
    for name in sorted(cells.cells_by_file):
        record = records.get(name)
        if record is None:
            raise ExportError(f"a summary refers to archive file {name}, which is not recorded")
        if record.state == ArchiveState.PURGED:
            purged.append(name)
            continue
        frame = read_archived_readings(root, name, record.facts.sha256)
        mask = in_cells(frame, cells.cells_by_file[name])
        times = frame["effective_ms"].astype(np.int64)
        if scope.since_ms is not None:
            mask &= (times >= scope.since_ms).to_numpy()
        if scope.until_ms is not None:
            mask &= (times < scope.until_ms).to_numpy()
        if recent is not None:
            mask &= frame["batch_id"].isin(recent).to_numpy()
        rows = frame.loc[mask].sort_values(["resource_key", "part"], kind="stable")
        versions, parts = _hot_current(conn, rows["resource_key"].unique().tolist())
        yield ArchivedBatch(name, rows.reset_index(drop=True), versions, parts)


def _hot_current(
    conn: Connection, keys: list[str]
) -> tuple[dict[str, set[str]], set[tuple[str, int]]]:
    versions: dict[str, set[str]] = {}
    parts: set[tuple[str, int]] = set()
    for start in range(0, len(keys), _IN):
        query = select(_reading.c.resource_key, _reading.c.resource_version, _reading.c.part).where(
            readings_of(keys[start : start + _IN]), _reading.c.state.in_(CURRENT)
        )
        for key, version, part in conn.execute(query):
            versions.setdefault(key, set()).add(version)
            parts.add((key, int(part)))
    return versions, parts


def chain_head(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(_audit.c.seq, _audit.c.hash).order_by(_audit.c.seq.desc())).first()
    return None if row is None else {"seq": int(row.seq), "hash": row.hash}


def _patients_named(details: dict[str, Any]) -> set[str]:
    named = set()
    if isinstance(details.get("patient"), str):
        named.add(details["patient"])
    if isinstance(details.get("patients"), list):
        named.update(p for p in details["patients"] if isinstance(p, str))
    return named


def iter_audit(
    conn: Connection, patient: str | None, since_ms: int | None = None
) -> Iterator[list[tuple[AuditFacts, Any]]]:
    """The audit chain in order (from ``since_ms`` on, if given). A patient-scoped export
    leaves out the events that name another patient (holds, restores, purges, exports of
    someone else)."""
    query = select(_audit).order_by(_audit.c.seq)
    if since_ms is not None:
        query = query.where(_audit.c.at_ms >= since_ms)
    for batch in _batches(conn, query):
        out = []
        for r in batch:
            try:
                details = json.loads(r.details_json)
            except ValueError:
                details = {}
            if not isinstance(details, dict):
                details = {}
            named = _patients_named(details)
            if patient is not None and named - {patient}:
                continue
            run_id = details.get("run_id")
            facts = AuditFacts(
                seq=int(r.seq),
                at_ms=int(r.at_ms),
                actor=r.actor,
                action=r.action,
                details_json=r.details_json,
                prev_hash=r.prev_hash,
                hash=r.hash,
                patient=next(iter(named)) if len(named) == 1 else None,
                run_id=run_id if isinstance(run_id, int) else None,
            )
            out.append((facts, r))
        yield out
