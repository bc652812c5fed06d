"""One shard of the nightly job: one patient's raw readings before ``until``.

detect → summarise → archive (written, fsynced, re-read) → one transaction that marks the
retained readings, writes summaries, reasons and episodes, and deletes the collapsed readings.
Runs in any process: it opens its own database connection from the URL it is given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine, Float, Integer, and_, bindparam, select, update
from sqlalchemy.engine import Connection

from medsleep.archive.body_format import (
    BODY_COLUMN,
    STORED_COLUMNS,
    archive_schema,
    body_metadata,
    body_texts,
    carries_bodies,
)
from medsleep.archive.files import write_archive_file
from medsleep.archive.holds import is_held
from medsleep.archive.index import ARCHIVE_COLUMNS, active_cells_of
from medsleep.consolidate.sparse import sparse_retention_rows, too_sparse
from medsleep.consolidate.summarize import (
    SUMMARY_COLUMNS,
    Collapsed,
    bucket_start_ms,
    collapse_normal_runs,
)
from medsleep.detect import PatientDecisions, classify_patient, group_episodes
from medsleep.errors import MedsleepError
from medsleep.policy import Policy
from medsleep.store.bodies import BodyReader, dictionaries_of, release_bodies
from medsleep.store.bulk import delete_ids, fetch_tuples, insert_rows, update_ids
from medsleep.store.engine import worker_engine
from medsleep.store.tables import (
    ARCHIVE_FILE,
    READING,
    RESOURCE_SEEN,
    SUMMARY,
    ArchiveState,
    ReadingState,
    SummaryState,
)
from medsleep.timefmt import ms_to_datetime

log = logging.getLogger(__name__)
_reading = READING
_seen = RESOURCE_SEEN
_summary = SUMMARY
_archive = ARCHIVE_FILE
_SUMMARY_INSERT = ("run_id", *SUMMARY_COLUMNS, "archive_files", "state")
_RETENTION_INSERT = (
    "run_id",
    "reading_id",
    "kind",
    "rule",
    "score",
    "threshold",
    "news2",
    "context_of",
)
_EPISODE_INSERT = (
    "run_id",
    "patient",
    "start_ms",
    "end_ms",
    "codes",
    "worst_json",
    "peak_news2",
    "reasons",
    "readings",
)


# numpy dtypes of the reading columns; text stays object: pandas 3 turns an object array of str
# into its Arrow-backed ``str`` unless the column is a Series of dtype object, and the shard
# only compares and groups these keys (measured: Arrow strings cost 2.3 s of CPU a 727k-reading
# night, building them and turning them back into numpy for every comparison)
_DTYPES = {
    c.name: (
        np.int64
        if isinstance(c.type, Integer)
        else np.float64
        if isinstance(c.type, Float)
        else object
    )
    for c in _reading.c
}


class ShardConflictError(MedsleepError):
    """Readings of the shard changed while it was being consolidated (retry the shard)."""


@dataclass(frozen=True)
class ShardTask:
    db_url: str
    archive_root: str
    run_id: int
    shard: int
    patient: str
    until_ms: int
    policy: Policy
    now_ms: int  # the run's clock when the shard was handed out


@dataclass(frozen=True)
class ShardResult:
    patient: str
    readings_in: int = 0
    retained: int = 0
    collapsed: int = 0
    summaries: int = 0
    superseded_summaries: int = 0
    archived: int = 0
    archive_files: int = 0
    episodes: int = 0
    sparse: int = 0  # retained because too few to summarise (part of `retained`)
    series_clinical: int = 0  # series judged by clinical rules (and statistics)
    series_statistical: int = 0  # series of codes no catalogue knows: statistics only
    held: int = 0  # 1 when a hold placed during the run stopped this shard


def consolidate_shard(task: ShardTask) -> ShardResult:
    """Consolidate one patient; safe to call in a worker process."""
    engine = worker_engine(task.db_url)
    try:
        return _consolidate(engine, task, attempt=0)
    except ShardConflictError:
        log.info("shard %s changed under us; retrying once", task.shard)
        return _consolidate(engine, task, attempt=1)


def load_raw(conn: Connection, task: ShardTask) -> pd.DataFrame:
    """The shard's raw readings, ordered by code and time, straight from the DB driver (the
    ORM's row objects cost more than the query for a patient-day of readings), each with its
    resource's stored body (``resource_body``, compressed) for the archive."""
    columns = [*(c.name for c in _reading.c), BODY_COLUMN]
    rows = fetch_tuples(conn, _LOAD_RAW, {"patient": task.patient, "until_ms": task.until_ms})
    if not rows:
        return pd.DataFrame(columns=columns)
    # One 2-d object array, cut into columns: cheaper than transposing the tuples in Python
    # (measured: 7 ms a patient-day), filled from one flat iterator rather than row by row
    # (2.2 against 3.8 ms)
    width = len(_FETCHED) + 1
    table = np.fromiter(chain.from_iterable(rows), dtype=object, count=len(rows) * width)
    table = table.reshape(len(rows), width)
    at = {name: i for i, name in enumerate([*(c.name for c in _FETCHED), BODY_COLUMN])}
    constants = {"patient": task.patient, "state": str(ReadingState.RAW)}
    return numpy_frame(
        {
            name: np.full(len(rows), constants[name], dtype=object)
            if name in constants
            else table[:, at[name]].astype(_DTYPES.get(name, object))
            for name in columns
        }
    )


_CONSTANT = ("patient", "state")
# patient and state are the query's own constants: not fetched, a Python object a row each
# (measured: a quarter of the fetch)
_FETCHED = [c for c in _reading.c if c.name not in _CONSTANT]
# The body in the same query: a primary-key lookup a row costs less than a second round trip
# with every key (measured: 2-4 against 13 ms a patient-day). A template, compiled once.
_LOAD_RAW = (
    select(*_FETCHED, _seen.c.body.label(BODY_COLUMN))
    .select_from(
        _reading.outerjoin(
            _seen,
            and_(
                _seen.c.resource_key == _reading.c.resource_key,
                _seen.c.resource_version == _reading.c.resource_version,
            ),
        )
    )
    .where(
        _reading.c.patient == bindparam("patient"),
        _reading.c.state == ReadingState.RAW,
        _reading.c.effective_ms < bindparam("until_ms"),
    )
    .order_by(_reading.c.code, _reading.c.effective_ms, _reading.c.id)
)


def numpy_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A frame of these numpy columns as they are: object columns stay object."""
    return pd.DataFrame(
        {
            name: pd.Series(column, dtype=object, copy=False) if column.dtype == object else column
            for name, column in columns.items()
        }
    )


def _classify_frame(raw: pd.DataFrame) -> pd.DataFrame:
    return numpy_frame(
        {
            "id": raw["id"].to_numpy(dtype=np.int64),
            "code": raw["code"].to_numpy(dtype=object),
            "t": raw["effective_ms"].to_numpy(dtype=np.int64),
            "value": raw["value"].to_numpy(dtype=np.float64),
            "interpretation": raw["interpretation"].to_numpy(dtype=object),
            "reference_range": raw["reference_range"].to_numpy(dtype=object),
        }
    )


def archive_name(task: ShardTask, attempt: int) -> str:
    """``YYYY/MM/run-<run>-<shard>[-<attempt>].parquet``, dated by the window's end.

    A retried attempt gets its own name: the file of a rolled-back attempt may still exist.
    """
    suffix = f"-{attempt}" if attempt else ""
    return f"{ms_to_datetime(task.until_ms):%Y/%m}/run-{task.run_id}-{task.shard}{suffix}.parquet"


def _consolidate(engine: Engine, task: ShardTask, attempt: int) -> ShardResult:
    # One connection for the whole shard: opening SQLite connections is not free.
    with engine.connect() as conn:
        if is_held(conn, task.patient):  # placed after the run started
            return ShardResult(task.patient, held=1)
        raw = load_raw(conn, task)
        if raw.empty:
            return ShardResult(task.patient)
        return _decide_and_write(conn, task, attempt, raw)


@dataclass(frozen=True, eq=False)
class ShardDecision:
    """Everything a shard decided, before it writes anything: the seam the real run and the
    dry run share (``consolidate.dry_run`` reports it, ``_write_decision`` carries it out)."""

    raw: pd.DataFrame  # the shard's raw readings, with their band
    decisions: PatientDecisions
    retained_ids: npt.NDArray[np.int64]  # rule, detector, artifact, context and sparse
    collapse: pd.DataFrame  # the readings to archive and delete
    sparse_rows: pd.DataFrame  # normal readings too few to summarise: they stay raw
    combined: pd.DataFrame  # collapse plus the archived readings of the cells late data touches
    collapsed: Collapsed
    superseded: list[int]  # active summaries the late data replaces
    episodes: list[Any]
    dictionaries: dict[int, bytes]  # the store's body dictionaries, for the archive file

    def result(self, patient: str, archived: int) -> ShardResult:
        return ShardResult(
            patient=patient,
            readings_in=len(self.raw),
            retained=len(self.retained_ids),
            collapsed=len(self.collapse),
            summaries=len(self.collapsed.summaries),
            superseded_summaries=len(self.superseded),
            archived=archived,
            archive_files=1 if archived else 0,
            episodes=len(self.episodes),
            sparse=len(self.sparse_rows),
            series_clinical=self.decisions.series_clinical,
            series_statistical=self.decisions.series_statistical,
        )


def decide_shard(conn: Connection, task: ShardTask, raw: pd.DataFrame) -> ShardDecision:
    """Decide what to keep, summarise and archive of ``raw``; reads, never writes."""
    policy = task.policy
    frame = _classify_frame(raw)
    decisions = classify_patient(frame, policy)
    retained_ids = decisions.retained_ids
    keep = np.isin(frame["id"].to_numpy(), retained_ids)
    raw = raw.assign(band=pd.Series(decisions.band.to_numpy(dtype=object), dtype=object))
    collapse = raw.loc[~keep]
    # The archive keeps each collapsed reading with its resource's body as the store keeps it
    # (compressed with the store's dictionary, a copy of which goes into the file): read once
    # per resource, never decompressed here
    missing = int(collapse[BODY_COLUMN].isna().sum())
    if missing:
        raise ShardConflictError(f"shard {task.patient}: {missing} readings lost their body")
    dictionaries = dictionaries_of(conn) if len(collapse) else {}
    if not carries_bodies(len(collapse), dictionaries):
        collapse = _with_texts(conn, collapse)
    episodes = group_episodes(frame, decisions, policy) if retained_ids.size else []

    late = active_cells_of(
        conn,
        Path(task.archive_root),
        task.patient,
        _cells(collapse, task.policy.bucket_minutes),
    )
    conn.commit()  # end the read transaction; the write is its own
    sparse = too_sparse(collapse, late.readings, policy)
    if sparse.any():
        # Too few to summarise: they stay raw, retained with their own reason.
        sparse_rows = collapse.loc[sparse]
        collapse = collapse.loc[~sparse]
        retained_ids = np.union1d(retained_ids, sparse_rows["id"].to_numpy(dtype=np.int64))
    else:
        sparse_rows = collapse.iloc[:0]
    combined = _with_late_readings(collapse, late.readings)
    collapsed = collapse_normal_runs(
        combined.rename(columns={"effective_ms": "t"}), policy.bucket_minutes
    )
    return ShardDecision(
        raw, decisions, retained_ids, collapse, sparse_rows, combined, collapsed,
        late.summary_ids, episodes, dictionaries,
    )  # fmt: skip


def _decide_and_write(
    conn: Connection, task: ShardTask, attempt: int, raw: pd.DataFrame
) -> ShardResult:
    return _write_decision(conn, task, attempt, decide_shard(conn, task, raw))


def _write_decision(
    conn: Connection, task: ShardTask, attempt: int, decision: ShardDecision
) -> ShardResult:
    """Archive (written, verified), then one transaction for every row the decision changes."""
    policy = task.policy
    decisions, retained_ids, collapse = decision.decisions, decision.retained_ids, decision.collapse
    sparse_rows, combined, collapsed = decision.sparse_rows, decision.combined, decision.collapsed
    episodes, superseded = decision.episodes, decision.superseded
    summaries = collapsed.summaries
    bucket_starts = summaries["bucket_start_ms"].to_numpy()[
        collapsed.summary_index[: len(collapse)]
    ]
    new_rows = _archive_rows(collapse, bucket_starts, task)

    file_name = ""
    archived = 0
    if len(new_rows):
        file_name = archive_name(task, attempt)
        written = write_archive_file(
            Path(task.archive_root),
            file_name,
            new_rows,
            metadata=body_metadata(decision.dictionaries)
            if BODY_COLUMN in new_rows.column_names
            else None,
        )
        archived = written.rows

    files_per_summary = _archive_files_per_summary(
        combined, collapsed.summary_index, len(summaries), file_name
    )
    with conn.begin():
        if file_name:
            conn.execute(
                _archive.insert().values(
                    name=file_name,
                    run_id=task.run_id,
                    patient=task.patient,
                    sha256=written.sha256,
                    rows=written.rows,
                    bytes=written.bytes,
                    created_ms=task.now_ms,
                    state=ArchiveState.ACTIVE,
                )
            )
        if superseded:
            conn.execute(
                update(_summary)
                .where(_summary.c.id.in_(superseded))
                .values(state=SummaryState.SUPERSEDED, superseded_by_run=task.run_id)
            )
        insert_rows(
            conn,
            "summary",
            _SUMMARY_INSERT,
            _summary_rows(summaries, files_per_summary, task.run_id),
        )
        insert_rows(
            conn,
            "retention",
            _RETENTION_INSERT,
            _retention_rows(decisions, task.run_id)
            + sparse_retention_rows(sparse_rows, policy, task.run_id),
        )
        insert_rows(conn, "episode", _EPISODE_INSERT, _episode_rows(episodes, task))
        changed = update_ids(
            conn, "reading", retained_ids.tolist(), "state = 'retained'", "state = 'raw'"
        )
        deleted = delete_ids(conn, "reading", collapse["id"].tolist(), "state = 'raw'")
        if changed != len(retained_ids) or deleted != len(collapse):
            raise ShardConflictError(
                f"shard {task.patient}: expected {len(retained_ids)}/{len(collapse)} raw "
                f"readings, found {changed}/{deleted}"
            )
        # texts no reading refers to any more: the archive file just written holds them
        release_bodies(conn, collapse["resource_key"].unique().tolist())
    return decision.result(task.patient, archived)


def _with_late_readings(collapse: pd.DataFrame, late: pd.DataFrame) -> pd.DataFrame:
    """The readings to summarise: late data re-collapses whole cells, the new readings
    (``_new``) and those already archived for them."""
    if late.empty:  # the usual night; a concat with the empty frame made every column object
        return collapse.assign(_new=True).reset_index(drop=True)
    return pd.concat([collapse.assign(_new=True), late.assign(_new=False)], ignore_index=True)


def _archive_rows(collapse: pd.DataFrame, bucket_starts: np.ndarray, task: ShardTask) -> pa.Table:
    """The collapsed readings as archive rows, each with the bucket it is summarised in.

    Built column by column with the file's schema: nothing inferred from the values (pandas'
    conversion looked at every text value's type first), and the shard's constants (patient,
    state, run) repeated by Arrow rather than converted a row at a time (measured: 1.9-2.5 against
    0.9-1.0 us a reading)."""
    names = STORED_COLUMNS if BODY_COLUMN in collapse.columns else ARCHIVE_COLUMNS
    schema = archive_schema(names)
    n = len(collapse)
    constants = {"patient": task.patient, "state": str(ReadingState.RAW), "run_id": task.run_id}
    computed = {"bucket_start_ms": bucket_starts.astype(np.int64, copy=False)}
    columns = [
        pa.repeat(pa.scalar(constants[f.name], f.type), n)
        if f.name in constants
        else pa.array(
            computed[f.name] if f.name in computed else collapse[f.name].to_numpy(),
            type=f.type,
        )
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _with_texts(conn: Connection, collapse: pd.DataFrame) -> pd.DataFrame:
    """``collapse`` with each body turned back into its text (``resource_json``, format 1)."""
    texts = body_texts(collapse, BodyReader(conn))
    return collapse.drop(columns=[BODY_COLUMN]).assign(
        resource_json=pd.Series(texts, dtype=object, index=collapse.index)
    )


def _cells(collapse: pd.DataFrame, bucket_minutes: int) -> set[tuple[str, str, int]]:
    """The (code, unit, bucket start) cells the collapsed readings fall in."""
    starts = bucket_start_ms(collapse["effective_ms"].to_numpy(), bucket_minutes).tolist()
    return set(zip(collapse["code"].tolist(), collapse["unit"].tolist(), starts, strict=True))


def _archive_files_per_summary(
    combined: pd.DataFrame, summary_index: np.ndarray, count: int, new_file: str
) -> list[str]:
    """The sorted archive file names (as JSON) holding each summary's readings."""
    new = combined["_new"].to_numpy(dtype=bool)
    if new.all():  # no late data: every summary stands for new readings only
        return [json.dumps([new_file])] * count
    sources = np.where(new, new_file, combined["_file"].to_numpy(dtype=object))
    pairs = pd.DataFrame({"summary": summary_index, "file": sources}).drop_duplicates()
    files: list[list[str]] = [[] for _ in range(count)]
    for summary, name in zip(pairs["summary"].tolist(), pairs["file"].tolist(), strict=True):
        files[summary].append(str(name))
    return [json.dumps(sorted(names)) for names in files]


def _plain_columns(table: pd.DataFrame, columns: Sequence[str]) -> list[list[Any]]:
    """Columns as Python lists with missing values (NaN, NA) as None, for the DB driver."""
    out = []
    for name in columns:
        column = table[name]
        values = column.tolist()
        if column.hasnans:
            missing = column.isna().to_numpy()
            values = [None if gone else v for v, gone in zip(values, missing, strict=True)]
        out.append(values)
    return out


def _summary_rows(summaries: pd.DataFrame, files: list[str], run_id: int) -> list[tuple[Any, ...]]:
    columns = _plain_columns(summaries, SUMMARY_COLUMNS)
    return [
        (run_id, *values, files[i], SummaryState.ACTIVE)
        for i, values in enumerate(zip(*columns, strict=True))
    ]


_RETENTION_COLUMNS = ("reading_id", "kind", "rule", "score", "threshold", "news2", "context_of")


def _retention_rows(decisions: Any, run_id: int) -> list[tuple[Any, ...]]:
    reasons: pd.DataFrame = decisions.reasons
    if reasons.empty:
        return []
    return [
        (run_id, *row) for row in zip(*_plain_columns(reasons, _RETENTION_COLUMNS), strict=True)
    ]


def _episode_rows(episodes: list[Any], task: ShardTask) -> list[tuple[Any, ...]]:
    return [
        (
            task.run_id,
            task.patient,
            int(e.start_ms),
            int(e.end_ms),
            ",".join(e.codes),
            json.dumps({code: float(v) for code, v in e.worst.items()}),
            int(e.peak_news2),
            ",".join(e.reasons),
            len(e.reading_ids),
        )
        for e in episodes
    ]
