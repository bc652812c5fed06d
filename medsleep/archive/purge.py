"""Delete archive files past retention — never a held patient's, never one inside retention.

A file is *due* when every reading in it is older than ``--before``. A due file is purged only
when it is past the policy's retention (``archive_years``) twice over: its newest reading and
the file itself (when it was archived) are both older than now minus ``archive_years``.
Deleting is irreversible, so either clock saying "too young" keeps the file.

Purging marks the ``archive_file`` row ``purged`` and appends a ``purge`` audit event per
patient in one transaction, then deletes the files. A crash between the two leaves files whose
rows say ``purged``; the next purge deletes them (``leftovers_removed``). Summaries keep naming
their purged files, and their statistics stay. Files of patients on legal hold are refused and
reported (and audited); files that are missing or fail their checksum are left alone and
reported as problems — a file that does not match its record is evidence, not garbage.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from medsleep.archive.files import ArchiveFile, verify_archive_file
from medsleep.archive.holds import held_patients
from medsleep.audit import append_event, audited_transaction
from medsleep.errors import ArchiveError, MedsleepError
from medsleep.files import fsync_dir
from medsleep.store.handle import Store
from medsleep.store.locking import consolidation_lock
from medsleep.store.tables import ARCHIVE_FILE, RUN, ArchiveState
from medsleep.timefmt import ms_to_datetime, to_ms

log = logging.getLogger(__name__)
_archive = ARCHIVE_FILE
_run = RUN


class PurgeError(MedsleepError):
    """A purge request that cannot be carried out as asked (e.g. a negative retention)."""


@dataclass(frozen=True)
class FileOutcome:
    """One archive file and what the purge did or did not do with it."""

    name: str
    patient: str
    rows: int
    bytes: int
    sha256: str
    newest_ms: int | None = None
    reason: str = ""


@dataclass
class PurgeReport:
    before_ms: int
    retention_cutoff_ms: int
    dry_run: bool
    purged: list[FileOutcome] = field(default_factory=list)
    held: list[FileOutcome] = field(default_factory=list)
    within_retention: list[FileOutcome] = field(default_factory=list)
    problems: list[FileOutcome] = field(default_factory=list)
    leftovers_removed: list[str] = field(default_factory=list)
    audit_seqs: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No file was missing or failed its checksum (held files are not a failure)."""
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["readings_purged"] = sum(f.rows for f in self.purged)
        out["bytes_purged"] = sum(f.bytes for f in self.purged)
        return out


def retention_cutoff_ms(now_ms: int, archive_years: float) -> int:
    """Now minus ``archive_years`` calendar years; a fraction of a year counts as 366 days per
    year (rounding toward keeping longer). 29 February goes back to 28 February.

    >>> from medsleep.timefmt import iso, parse_iso_ms
    >>> iso(retention_cutoff_ms(parse_iso_ms("2026-11-26T00:00:00+00:00"), 7))
    '2019-11-26T00:00:00Z'
    """
    if archive_years < 0:
        raise PurgeError(f"archive_years must not be negative, got {archive_years}")
    now = ms_to_datetime(now_ms)
    whole = int(archive_years)
    try:
        back = now.replace(year=now.year - whole)
    except ValueError:  # 29 February in a year without one
        back = now.replace(year=now.year - whole, day=28)
    back -= timedelta(days=(archive_years - whole) * 366)
    return to_ms(back)


@dataclass(frozen=True)
class _Candidate:
    outcome: FileOutcome
    created_ms: int
    until_ms: int | None


def purge(
    store: Store, *, before_ms: int, archive_years: float, dry_run: bool = False
) -> PurgeReport:
    """Purge the archive files due before ``before_ms`` that are past retention.

    Holds the consolidation lock (a consolidation re-reads old files for late data) unless
    ``dry_run``; raises LockHeldError when a consolidation is running.
    """
    engine, archive_root = store.engine, store.archive_root
    actor, now_ms = store.actor, store.now_ms()
    cutoff = retention_cutoff_ms(now_ms, archive_years)
    report = PurgeReport(before_ms=before_ms, retention_cutoff_ms=cutoff, dry_run=dry_run)
    if dry_run:
        _decide(engine, archive_root, report)
        return report
    with consolidation_lock(engine):
        due = _decide(engine, archive_root, report)
        _commit(engine, due, report, actor, now_ms)
        for outcome in report.purged:
            _remove(archive_root, outcome.name)
        report.leftovers_removed = _remove_leftovers(engine, archive_root, report)
    log.info(
        "purge: %d files purged, %d held, %d within retention, %d problems",
        len(report.purged),
        len(report.held),
        len(report.within_retention),
        len(report.problems),
    )
    return report


def _commit(
    engine: Engine, due: list[FileOutcome], report: PurgeReport, actor: str, now_ms: int
) -> None:
    """Mark the due files purged and audit them in one transaction. Another writer appending
    to the audit chain at the same moment takes our seq and fails us on its primary key; the
    transaction changes nothing then, so it is simply tried again."""

    def mark(conn: Connection) -> None:
        report.purged, report.held = [], []
        for outcome in _apply_holds(conn, due, report):
            changed = conn.execute(
                update(_archive)
                .where(_archive.c.name == outcome.name, _archive.c.state != ArchiveState.PURGED)
                .values(state=ArchiveState.PURGED)
            ).rowcount
            if changed == 1:
                report.purged.append(outcome)
        report.audit_seqs = _audit(conn, report, actor, now_ms)

    audited_transaction(engine, mark)


def _decide(engine: Engine, root: Path, report: PurgeReport) -> list[FileOutcome]:
    """Sort every live archive file due before ``before`` into purge, retention or problem;
    files of held patients are split off later, inside the purging transaction."""
    due: list[FileOutcome] = []
    for candidate in _candidates(engine, report.before_ms):
        outcome = candidate.outcome
        if candidate.created_ms >= report.retention_cutoff_ms:
            report.within_retention.append(_with(outcome, reason="archived within retention"))
            continue
        newest = _newest_ms(root, candidate, min(report.before_ms, report.retention_cutoff_ms))
        if isinstance(newest, str):
            report.problems.append(_with(outcome, reason=newest))
            continue
        if newest is not None and newest >= report.before_ms:
            continue  # not due: it holds readings from --before on
        outcome = _with(outcome, newest_ms=newest)
        if newest is not None and newest >= report.retention_cutoff_ms:
            report.within_retention.append(_with(outcome, reason="readings within retention"))
            continue
        try:
            verify_archive_file(root, outcome.name, outcome.sha256, rows=outcome.rows)
        except ArchiveError as exc:
            report.problems.append(_with(outcome, reason=str(exc)))
            continue
        due.append(outcome)
    if report.dry_run:
        with engine.connect() as conn:
            due = _apply_holds(conn, due, report)
        report.purged = due
    return due


def _candidates(engine: Engine, before_ms: int) -> list[_Candidate]:
    query = (
        select(_archive, _run.c.until_ms)
        .select_from(_archive.outerjoin(_run, _run.c.id == _archive.c.run_id))
        .where(_archive.c.state != ArchiveState.PURGED)
        .order_by(_archive.c.patient, _archive.c.name)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        _Candidate(
            FileOutcome(r.name, r.patient, int(r.rows), int(r.bytes), r.sha256),
            int(r.created_ms),
            None if r.until_ms is None else int(r.until_ms),
        )
        for r in rows
    ]


def _newest_ms(root: Path, candidate: _Candidate, bound_ms: int) -> int | None | str:
    """The newest reading time in the file; None when the run's window already proves every
    reading older than ``bound_ms`` (no need to open the file); or a problem description."""
    if candidate.until_ms is not None and candidate.until_ms <= bound_ms:
        return None  # a run archives only readings before its until
    name = candidate.outcome.name
    try:
        path = ArchiveFile(name, candidate.outcome.sha256, 0, 0).path(root)
        if not path.is_file():
            return f"archive file {name} is missing from {root}"
        parquet = pq.ParquetFile(path)
        column = parquet.schema_arrow.get_field_index("effective_ms")
        newest: int | None = None
        for group in range(parquet.metadata.num_row_groups):
            stats = parquet.metadata.row_group(group).column(column).statistics
            if stats is None or not stats.has_min_max:
                table = parquet.read(columns=["effective_ms"])
                values = table.column(0).to_pylist()
                return max(values) if values else None
            newest = int(stats.max) if newest is None else max(newest, int(stats.max))
        return newest
    except (OSError, pa.ArrowException, ArchiveError) as exc:
        return f"archive file {name} is unreadable: {exc}"


def _with(outcome: FileOutcome, **changes: Any) -> FileOutcome:
    return FileOutcome(**{**asdict(outcome), **changes})


def _apply_holds(
    conn: Connection, due: list[FileOutcome], report: PurgeReport
) -> list[FileOutcome]:
    held = held_patients(conn)
    keep = []
    for outcome in due:
        if outcome.patient in held:
            report.held.append(_with(outcome, reason=f"patient {outcome.patient} is on legal hold"))
        else:
            keep.append(outcome)
    return keep


def _audit(conn: Connection, report: PurgeReport, actor: str, now_ms: int) -> list[int]:
    """One ``purge`` event per patient whose files were purged or refused."""
    by_patient: dict[str, dict[str, list[Any]]] = {}
    for outcome in report.purged:
        entry = by_patient.setdefault(outcome.patient, {"purged": [], "refused_hold": []})
        entry["purged"].append(
            {"name": outcome.name, "sha256": outcome.sha256, "rows": outcome.rows}
        )
    for outcome in report.held:
        entry = by_patient.setdefault(outcome.patient, {"purged": [], "refused_hold": []})
        entry["refused_hold"].append(outcome.name)
    seqs = []
    for patient, files in sorted(by_patient.items()):
        details = {
            "patient": patient,
            "before_ms": report.before_ms,
            "retention_cutoff_ms": report.retention_cutoff_ms,
            "readings": sum(int(f["rows"]) for f in files["purged"]),
            **files,
        }
        seqs.append(append_event(conn, actor=actor, action="purge", details=details, at_ms=now_ms))
    return seqs


def _remove(root: Path, name: str) -> None:
    path = ArchiveFile(name, "", 0, 0).path(root)
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _remove_leftovers(engine: Engine, root: Path, report: PurgeReport) -> list[str]:
    """Files still on disk whose rows say ``purged`` (a purge that crashed after commit)."""
    just_purged = {f.name for f in report.purged}
    with engine.connect() as conn:
        names: Iterable[str] = [
            r[0]
            for r in conn.execute(
                select(_archive.c.name).where(_archive.c.state == ArchiveState.PURGED)
            )
        ]
    removed = []
    for name in names:
        if name in just_purged:
            continue
        path = ArchiveFile(name, "", 0, 0).path(root)
        if path.is_file():
            _remove(root, name)
            removed.append(name)
    return removed


def _fsync_dir(directory: Path) -> None:
    try:
        fsync_dir(directory)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.debug("cannot fsync %s: %s", directory, exc)
