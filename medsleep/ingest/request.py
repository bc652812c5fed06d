"""Ingest for one HTTP request: the pipeline's parse and write steps, one batch per request.

One thing differs from a CLI run: a transaction Bundle is all or nothing. It is parsed whole
first and, if any entry is rejected, nothing at all is written; otherwise it is written in one
transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from medsleep.errors import MedsleepError
from medsleep.ingest.parsing import Parsed, ParseOptions, parse_chunk
from medsleep.ingest.pipeline import (
    Clock,
    IngestReport,
    chunks,
    finish_batch,
    open_batch,
)
from medsleep.ingest.sources import InputRecord
from medsleep.ingest.writer import ChunkCounts, write_chunk
from medsleep.store.archived_versions import stored_versions
from medsleep.store.tables import INGEST_BATCH, BatchStatus
from medsleep.timefmt import wall_clock_ms

log = logging.getLogger(__name__)
_batch = INGEST_BATCH
DEFAULT_CHUNK = 2_000  # smaller than the CLI's: a request's latency is a chunk's commit away


class TransactionRejectedError(MedsleepError):
    """A transaction Bundle has entries that would be quarantined; nothing was written."""

    def __init__(self, rejected: Sequence[tuple[str, str]]) -> None:
        self.rejected = list(rejected)
        where = ", ".join(position for position, _ in self.rejected[:5])
        super().__init__(f"{len(self.rejected)} rejected entries ({where}); nothing written")


class InputAbortedError(MedsleepError):
    """The request's input stopped short (too large, client gone); what came before stays."""


@dataclass(frozen=True)
class EntryResult:
    """What became of one input record: created, duplicate, skipped or quarantined."""

    position: str
    outcome: str
    resource_key: str | None = None
    version: str | None = None
    detail: str | None = None  # the skip reason or the quarantine error


@dataclass
class RequestIngest:
    report: IngestReport
    entries: list[EntryResult]  # per record, in input order, when asked for
    aborted: InputAbortedError | None = None  # the input stopped short; the batch is "failed"


def ingest_request(
    engine: Engine,
    records: Iterable[InputRecord],
    *,
    source: str,
    actor: str,
    options: ParseOptions | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    clock: Clock = wall_clock_ms,
    per_entry: bool = False,
) -> RequestIngest:
    """Stream ``records`` into the store as one batch, a chunk per transaction.

    Rejected records are quarantined, as by ``medsleep ingest``. When ``records`` raises
    InputAbortedError, the chunks already written stay written, the batch is closed as
    ``failed`` with their counts, and the result says why (``aborted``); any other exception
    closes the batch the same way and propagates. ``per_entry`` also returns what became of
    each record (for bounded inputs such as a Bundle: it grows with the input).
    """
    options = options or ParseOptions()
    started = time.perf_counter()
    batch_id = open_batch(engine, source, clock)
    report, totals = IngestReport(batch_id=batch_id), ChunkCounts()
    parsed_entries: list[Parsed] = []
    status, aborted = BatchStatus.FAILED, None
    try:
        with engine.connect() as conn:
            for chunk in chunks(records, chunk_size):
                parsed = parse_chunk(chunk, options)
                report.resources += len(parsed)
                totals.add(write_chunk(conn, parsed, batch_id, clock()))
                if per_entry:
                    parsed_entries.extend(_lean(p) for p in parsed)
        status = BatchStatus.DONE
    except InputAbortedError as exc:
        aborted = exc
    finally:
        report.absorb(totals, started)
        finish_batch(engine, report, status, actor, clock)
    entries = entry_results(engine, batch_id, parsed_entries) if per_entry else []
    return RequestIngest(report, entries, aborted)


def ingest_transaction(
    engine: Engine,
    records: Iterable[InputRecord],
    *,
    source: str,
    actor: str,
    options: ParseOptions | None = None,
    clock: Clock = wall_clock_ms,
) -> RequestIngest:
    """All or nothing: raise TransactionRejectedError (writing nothing, quarantining nothing)
    if any record is rejected; otherwise write every record in one transaction."""
    options = options or ParseOptions()
    started = time.perf_counter()
    parsed = parse_chunk(list(records), options)
    rejected = [(p.position, p.error) for p in parsed if p.error is not None]
    if rejected:
        log.info("transaction rejected: %d of %d entries invalid", len(rejected), len(parsed))
        raise TransactionRejectedError(rejected)
    batch_id = open_batch(engine, source, clock)
    report, totals = IngestReport(batch_id=batch_id, resources=len(parsed)), ChunkCounts()
    status = BatchStatus.FAILED
    try:
        with engine.connect() as conn:
            totals.add(write_chunk(conn, parsed, batch_id, clock()))
        status = BatchStatus.DONE
    finally:
        report.absorb(totals, started)
        finish_batch(engine, report, status, actor, clock)
    return RequestIngest(report, entry_results(engine, batch_id, [_lean(p) for p in parsed]))


def entry_results(engine: Engine, batch_id: int, parsed: Sequence[Parsed]) -> list[EntryResult]:
    """Per record: created (this batch stored it first), duplicate, skipped or quarantined."""
    keys = sorted({p.key for p in parsed if p.key and p.error is None and p.skipped is None})
    with engine.connect() as conn:  # hot or archived since (store.archived_versions)
        stored_by = {
            (key, version): batch
            for key, versions in stored_versions(conn, keys).items()
            for version, batch in versions.items()
        }
    results: list[EntryResult] = []
    claimed: set[tuple[str, str]] = set()
    for item in parsed:
        if item.error is not None:
            results.append(EntryResult(item.position, "quarantined", detail=item.error))
        elif item.skipped is not None:
            identity = (item.key or None, item.version or None)
            results.append(EntryResult(item.position, "skipped", *identity, item.skipped))
        else:
            found = (item.key, item.version)
            fresh = stored_by.get(found) == batch_id and found not in claimed
            claimed.add(found)
            kind = "created" if fresh else "duplicate"
            results.append(EntryResult(item.position, kind, *found))
    return results


def _lean(item: Parsed) -> Parsed:
    # Per-entry results need the identity and outcome, not the bytes, JSON or readings.
    return item._replace(raw=b"", readings=(), body=b"", tokens=())
