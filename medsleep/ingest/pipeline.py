"""The ingest pipeline: read → parse (optionally in a process pool) → write in chunks.

Memory stays flat: records stream from their files, and at most a few chunks are in flight.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import IO, Any

from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.exc import IntegrityError

from medsleep.audit import append_event, audited_transaction
from medsleep.ingest.interrupted import close_interrupted_batches, this_owner
from medsleep.ingest.parse_stream import ParseStream, gc_paused
from medsleep.ingest.parsing import Parsed, ParseOptions
from medsleep.ingest.sources import InputRecord, NdjsonBlock, walk_inputs
from medsleep.ingest.writer import ChunkCounts, write_chunk
from medsleep.store.bodies import adopt_dictionary, newest_codec
from medsleep.store.body_codec import BodyCodec
from medsleep.store.checkpoint import background_checkpoints
from medsleep.store.tables import INGEST_BATCH, BatchStatus
from medsleep.timefmt import wall_clock_ms

log = logging.getLogger(__name__)
_batch = INGEST_BATCH
Progress = Callable[[int, int], None]  # (bytes read, readings written) so far
Clock = Callable[[], int]  # epoch milliseconds


@dataclass
class IngestReport:
    """What an ingest did. Counts are in resources: resources = stored + duplicates + skipped
    + quarantined; ``readings`` counts the readings written."""

    batch_id: int
    resources: int = 0
    readings: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    quarantined: int = 0
    superseded: int = 0
    retracted: int = 0
    seconds: float = 0.0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    # one entry per input file: {"file", "records"} plus "error" when it (or its rest) could
    # not be read; entries walked in a folder but not read: {"file", "not_read": why}.
    # Not in as_json (the counts an HTTP request reports too); the CLI adds it to its --json.
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.resources == self.stored + self.duplicates + self.skipped + self.quarantined

    def as_json(self) -> dict[str, Any]:
        return {
            "resources": self.resources,
            "readings": self.readings,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "quarantined": self.quarantined,
            "seconds": round(self.seconds, 3),
            "superseded": self.superseded,
            "retracted": self.retracted,
            "skipped_reasons": dict(sorted(self.skipped_reasons.items())),
            "batch_id": self.batch_id,
        }

    def absorb(self, totals: ChunkCounts, started: float) -> None:
        """Take the written chunks' counts and the time since ``started`` (perf_counter)."""
        self.stored, self.duplicates = totals.stored, totals.duplicates
        self.skipped, self.quarantined = totals.skipped, totals.quarantined
        self.readings, self.superseded = totals.readings, totals.superseded
        self.retracted = totals.retracted
        self.skipped_reasons = dict(totals.skipped_reasons)
        self.seconds = time.perf_counter() - started


def chunks(records: Iterable[InputRecord], size: int) -> Iterator[list[InputRecord]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


_NBYTES = itemgetter(Parsed._fields.index("nbytes"))


def ingest_paths(
    engine: Engine,
    paths: Iterable[str],
    *,
    options: ParseOptions | None = None,
    stdin: IO[bytes] | None = None,
    workers: int = 0,
    chunk_size: int = 10_000,
    actor: str = "cli",
    clock: Clock = wall_clock_ms,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest files, folders or ``-`` (stdin) into the store and return the report."""
    walked = walk_inputs(paths)
    return ingest_files(
        engine,
        walked.files,
        not_read=walked.not_read,
        options=options,
        stdin=stdin,
        workers=workers,
        chunk_size=chunk_size,
        actor=actor,
        clock=clock,
        progress=progress,
    )


def ingest_files(
    engine: Engine,
    files: Sequence[str],
    *,
    options: ParseOptions | None = None,
    stdin: IO[bytes] | None = None,
    workers: int = 0,
    chunk_size: int = 10_000,
    actor: str = "cli",
    clock: Clock = wall_clock_ms,
    progress: Progress | None = None,
    not_read: Sequence[tuple[str, str]] = (),
) -> IngestReport:
    """Ingest files already listed by :func:`walk_inputs` (the CLI lists them once, to size
    its progress bar); ``not_read`` (walked, not read) goes into the report's ``files``."""
    stream = ParseStream.of_files(
        files,
        options=options or ParseOptions(),
        stdin=stdin,
        workers=workers,
        write_size=chunk_size,
    )
    with stream:
        return ingest_stream(
            engine, stream, files, actor=actor, clock=clock, progress=progress, not_read=not_read
        )


def ingest_stream(
    engine: Engine,
    stream: ParseStream,
    files: Sequence[str],
    *,
    actor: str = "cli",
    clock: Clock = wall_clock_ms,
    progress: Progress | None = None,
    not_read: Sequence[tuple[str, str]] = (),
) -> IngestReport:
    """Ingest a ``ParseStream.of_files(files)`` the caller made (and may have started before
    opening the store, see ``ParseStream.start``); the caller closes it."""
    report = _ingest(engine, stream, ", ".join(files), actor=actor, clock=clock, progress=progress)
    report.files = stream.accounts() + [{"file": name, "not_read": why} for name, why in not_read]
    return report


def ingest_records(
    engine: Engine,
    records: Iterable[InputRecord | NdjsonBlock],
    *,
    source: str,
    options: ParseOptions | None = None,
    workers: int = 0,
    chunk_size: int = 10_000,
    actor: str = "cli",
    clock: Clock = wall_clock_ms,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest already-read records (the HTTP server and tests call this directly); blocks of
    NDJSON lines only with ``workers``."""
    stream = ParseStream(
        records, options=options or ParseOptions(), workers=workers, write_size=chunk_size
    )
    with stream:
        return _ingest(engine, stream, source, actor=actor, clock=clock, progress=progress)


def _ingest(
    engine: Engine,
    stream: ParseStream,
    source: str,
    *,
    actor: str,
    clock: Clock,
    progress: Progress | None,
) -> IngestReport:
    """Write ``stream``'s chunks in one batch, each chunk in its own transaction."""
    started = time.perf_counter()
    batch_id = open_batch(engine, source, clock)
    report = IngestReport(batch_id=batch_id)
    totals = ChunkCounts()
    bytes_read = 0
    status = BatchStatus.FAILED
    try:
        with engine.connect() as conn, background_checkpoints(engine, conn) as checkpoints:
            proposal = stream.proposal()
            if proposal is not None:
                _settle_proposal(conn, stream, proposal, clock())
            parsed_chunks = stream.chunks()
            while True:
                with gc_paused():
                    parsed = next(parsed_chunks, None)
                    if parsed is None:
                        break
                    report.resources += len(parsed)
                    bytes_read += sum(map(_NBYTES, parsed))
                    totals.add(write_chunk(conn, parsed, batch_id, clock()))
                    checkpoints.poke()
                    if stream.workers and stream.codec is None:  # the first big chunk trains one
                        with conn.begin():
                            stream.codec = newest_codec(conn)
                    # Emptied, not just dropped: the stream's generator holds this list until
                    # its next step, and the collection due once the collector runs again would
                    # walk every result in it (measured: 0.08-0.11 s of the writing process's
                    # CPU for 154k plain Observations).
                    parsed.clear()
                if progress is not None:
                    progress(bytes_read, totals.readings)
        status = BatchStatus.DONE
    finally:
        report.absorb(totals, started)
        finish_batch(engine, report, status, actor, clock)
    log.info(
        "ingest batch %d: %d resources, %d readings, %d quarantined",
        batch_id,
        report.resources,
        report.readings,
        report.quarantined,
    )
    return report


def _settle_proposal(
    conn: Connection, stream: ParseStream, proposal: BodyCodec, now_ms: int
) -> None:
    """The store takes the dictionary the stream's first piece trained, unless it has one by
    now (a concurrent ingest's): then the stream hands back those bodies as their texts."""
    try:
        with conn.begin():
            if adopt_dictionary(conn, proposal, now_ms):
                return
    except IntegrityError:  # a concurrent first ingest stored its own in the meantime
        pass
    with conn.begin():
        stream.reject_proposal(newest_codec(conn))


def open_batch(engine: Engine, source: str, clock: Clock) -> int:
    """Record a new ingest batch (status running) and return its id; first close the
    batches of killed ingests (see ``interrupted``)."""
    close_interrupted_batches(engine, clock, actor="medsleep")
    with engine.begin() as conn:
        inserted = conn.execute(
            insert(_batch).values(
                started_ms=clock(),
                source=source[:500],
                status=BatchStatus.RUNNING,
                owner=this_owner(),
            )
        ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def finish_batch(
    engine: Engine, report: IngestReport, status: str, actor: str, clock: Clock
) -> None:
    """Record the batch's counts and append its audit event, in one transaction."""
    counts = report.as_json()

    def record(conn: Connection) -> None:
        conn.execute(
            update(_batch)
            .where(_batch.c.id == report.batch_id)
            .values(finished_ms=clock(), status=status, counts_json=json.dumps(counts))
        )
        append_event(conn, actor=actor, action=f"ingest.{status}", details=counts, at_ms=clock())

    audited_transaction(engine, record)
