"""The CSV and Parquet exports: the FHIR export's content as three tables.

* ``readings`` — one row per reading: every current (raw or retained) reading in scope with
  its retention reasons, then (``include_archived``) the archived readings behind the exported
  summaries (``state`` ``archived``, ``archive_file`` says where). ``resource_json`` is the
  original resource, as in the FHIR export.
* ``summaries`` — the active summaries with their statistics, run, policy and archive files.
* ``audit_events`` — the audit chain, hashes included.

CSV files are UTF-8 with a header row, every string quoted (an empty string is ``""``, a
missing value is empty); Parquet files are zstd-compressed with page checksums, a row group per
batch. Both keep the fixed schemas below whatever the data, so an empty export still has them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.engine import Connection

from medsleep.export.model import ExportReport, ExportRequest
from medsleep.export.output import AtomicFile
from medsleep.export.snapshot import (
    ArchivedBatch,
    ArchivedScope,
    ArchiveRecords,
    iter_archived,
    iter_audit,
    iter_hot_rows,
    iter_summaries,
    load_runs,
)
from medsleep.read.readings import reasons_for
from medsleep.store.bodies import texts_of
from medsleep.store.tables import ReadingState
from medsleep.timefmt import iso

_S, _I, _F = pa.string(), pa.int64(), pa.float64()
READING_SCHEMA: Final = pa.schema(
    [
        ("id", _I),
        ("patient", _S),
        ("code_system", _S),
        ("code", _S),
        ("effective", _S),
        ("effective_ms", _I),
        ("value", _F),
        ("unit", _S),
        ("orig_value", _F),
        ("orig_unit", _S),
        ("resource_key", _S),
        ("resource_version", _S),
        ("part", _I),
        ("status", _S),
        ("state", _S),
        ("reasons", _S),
        ("archive_file", _S),
        ("resource_json", _S),
    ]
)
SUMMARY_SCHEMA: Final = pa.schema(
    [
        ("id", _I),
        ("run_id", _I),
        ("policy_digest", _S),
        ("patient", _S),
        ("code", _S),
        ("unit", _S),
        ("band", _S),
        ("bucket_start", _S),
        ("bucket_end", _S),
        ("bucket_start_ms", _I),
        ("bucket_end_ms", _I),
        ("n", _I),
        ("min", _F),
        ("max", _F),
        ("mean", _F),
        ("std", _F),
        ("median", _F),
        ("first", _S),
        ("first_ms", _I),
        ("first_value", _F),
        ("last", _S),
        ("last_ms", _I),
        ("last_value", _F),
        ("values_json", _S),
        ("archive_files", _S),
    ]
)
AUDIT_SCHEMA: Final = pa.schema(
    [
        ("seq", _I),
        ("at", _S),
        ("at_ms", _I),
        ("actor", _S),
        ("action", _S),
        ("details_json", _S),
        ("prev_hash", _S),
        ("hash", _S),
    ]
)
_READING_COPY = ("id", "patient", "code_system", "code")
_READING_TAIL = (
    "value",
    "unit",
    "orig_value",
    "orig_unit",
    "resource_key",
    "resource_version",
    "part",
    "status",
)


class _Sink:
    """One table file: Arrow record batches out as CSV (header, strings quoted) or Parquet."""

    def __init__(self, handle: AtomicFile, schema: pa.Schema, fmt: str) -> None:
        self.handle, self.schema = handle, schema
        self._writer: pacsv.CSVWriter | pq.ParquetWriter
        if fmt == "csv":
            self._writer = pacsv.CSVWriter(handle, schema)
        else:
            self._writer = pq.ParquetWriter(
                handle, schema, compression="zstd", write_page_checksum=True
            )

    def write_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            columns = zip(*rows, strict=True)
            arrays = [pa.array(c, type=f.type) for c, f in zip(columns, self.schema, strict=True)]
            self.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writer.write_batch(batch)
            self.handle.count += batch.num_rows

    def finish(self) -> None:
        self._writer.close()

    def discard(self) -> None:
        """Close the writer of a failed export quietly (its file is being thrown away)."""
        with contextlib.suppress(pa.ArrowException, OSError, ValueError):
            self._writer.close()


@lru_cache(maxsize=1 << 16)
def _iso(ms: int) -> str:
    return iso(ms)  # readings repeat the same minutes across series


def write_tables(
    conn: Connection,
    out: Path,
    request: ExportRequest,
    root: Path,
    report: ExportReport,
    progress: Callable[[int], None] | None,
) -> None:
    """Write ``readings``, ``summaries`` and ``audit_events`` in ``request.format``."""
    suffix = request.format

    def counted(n: int) -> None:
        report.resources += n
        if progress is not None and n:
            progress(report.resources)

    with (
        AtomicFile(out, f"readings.{suffix}", "readings") as readings_file,
        AtomicFile(out, f"summaries.{suffix}", "summaries") as summaries_file,
        AtomicFile(out, f"audit_events.{suffix}", "audit_events") as audit_file,
    ):
        readings = _Sink(readings_file, READING_SCHEMA, suffix)
        summaries = _Sink(summaries_file, SUMMARY_SCHEMA, suffix)
        audits = _Sink(audit_file, AUDIT_SCHEMA, suffix)
        try:
            for batch in iter_hot_rows(conn, request.scope):
                rows = _hot_rows(conn, batch)
                readings.write_rows(rows)
                counted(len(rows))

            runs = load_runs(conn)
            records = ArchiveRecords(conn)
            cells = ArchivedScope()

            def flush_archived() -> None:
                if request.include_archived and cells.cells_by_file:
                    archived = iter_archived(
                        conn, root, cells, records, request.scope, report.purged_files
                    )
                    for part in archived:
                        table = _archived_batch(part)
                        readings.write_batch(table)
                        report.archived += table.num_rows
                        counted(table.num_rows)
                cells.cells_by_file.clear()
                records.clear()

            for batch in iter_summaries(conn, request.scope):
                rows = []
                for summary in batch:
                    if summary.facts.patient != cells.patient:
                        flush_archived()
                        cells.patient = summary.facts.patient
                    cells.add(summary)
                    run = runs.get(summary.facts.run_id)
                    rows.append(_summary_row(summary.row, run.policy_digest if run else None))
                summaries.write_rows(rows)
                report.summaries += len(rows)
                counted(len(rows))
            flush_archived()

            for events in iter_audit(conn, request.patient, request.updated_since_ms):
                rows = [_audit_row(row) for _, row in events]
                audits.write_rows(rows)
                counted(len(rows))
        except BaseException:
            for sink in (readings, summaries, audits):
                sink.discard()  # close the writers before the files are thrown away
            raise
        for sink in (readings, summaries, audits):
            sink.finish()
        report.files = [f.commit() for f in (readings_file, summaries_file, audit_file)]


def _hot_rows(conn: Connection, batch: Sequence[Any]) -> list[tuple[Any, ...]]:
    retained = [int(r.id) for r in batch if r.state == ReadingState.RETAINED]
    reasons = reasons_for(conn, retained) if retained else {}
    texts = texts_of(conn, {(str(r.resource_key), str(r.resource_version)) for r in batch})
    out = []
    for r in batch:
        m = r._mapping
        out.append(
            (
                *(m[c] for c in _READING_COPY),
                _iso(m["effective_ms"]),
                m["effective_ms"],
                *(m[c] for c in _READING_TAIL),
                m["state"],
                "; ".join(reasons.get(int(m["id"]), ())),
                None,
                texts[(str(m["resource_key"]), str(m["resource_version"]))],
            )
        )
    return out


def _archived_batch(batch: ArchivedBatch) -> pa.RecordBatch:
    """Archived readings as a ``readings`` batch, less those the hot store holds a current copy
    of (same resource and part) or a newer version of."""
    frame = batch.rows
    if batch.hot_versions:
        hot, parts = batch.hot_versions, batch.hot_parts
        rows = zip(
            frame["resource_key"].tolist(),
            frame["resource_version"].tolist(),
            frame["part"].tolist(),
            strict=True,
        )
        keep = [
            key not in hot or (version in hot[key] and (key, int(part)) not in parts)
            for key, version, part in rows
        ]
        frame = frame.loc[keep]
    n = len(frame)
    times = frame["effective_ms"].astype(np.int64)
    columns: dict[str, Any] = {
        name: frame[name] for name in READING_SCHEMA.names if name in frame.columns
    }
    columns.update(
        effective=[_iso(t) for t in times.tolist()],
        effective_ms=times,
        state=["archived"] * n,
        reasons=[""] * n,
        archive_file=[batch.name] * n,
    )
    arrays = [pa.array(columns[f.name], type=f.type, from_pandas=True) for f in READING_SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=READING_SCHEMA)


def _summary_row(r: Any, policy_digest: str | None) -> tuple[Any, ...]:
    return (
        int(r.id),
        int(r.run_id),
        policy_digest,
        r.patient,
        r.code,
        r.unit,
        r.band,
        iso(r.bucket_start_ms),
        iso(r.bucket_end_ms),
        int(r.bucket_start_ms),
        int(r.bucket_end_ms),
        int(r.n),
        float(r.min),
        float(r.max),
        float(r.mean),
        None if r.std is None else float(r.std),
        float(r.median),
        iso(r.first_ms),
        int(r.first_ms),
        float(r.first_value),
        iso(r.last_ms),
        int(r.last_ms),
        float(r.last_value),
        r.values_json,
        json.dumps(json.loads(r.archive_files)),
    )


def _audit_row(r: Any) -> tuple[Any, ...]:
    return (
        int(r.seq),
        iso(r.at_ms),
        int(r.at_ms),
        r.actor,
        r.action,
        r.details_json,
        r.prev_hash,
        r.hash,
    )
