"""The ingest pipeline: read → parse (optionally in a process pool) → write in chunks.

Memory stays flat: records stream from their files, and at most a few chunks are in flight.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import IO, Any

from sqlalchemy import Connection, Engine, insert, update

from medsleep.audit import append_event, audited_transaction
from medsleep.ingest.interrupted import close_interrupted_batches, this_owner
from medsleep.ingest.parsing import Parsed, ParseOptions, parse_piece
from medsleep.ingest.sources import (
    FILE_ERROR,
    NDJSON_SUFFIXES,
    STDIN,
    InputRecord,
    NdjsonBlock,
    ndjson_blocks,
    read_records,
    walk_inputs,
)
from medsleep.ingest.writer import ChunkCounts, write_chunk
from medsleep.store.bodies import BodyCodec, newest_codec
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


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one chunk.

    A chunk allocates hundreds of thousands of short-lived, acyclic objects (reference
    counting frees them); each collection they trigger walks every live object. Pausing it
    per chunk measured 15-20% faster ingest; it runs again between chunks.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


AUTO_WORKERS_BYTES = 16 * 2**20  # below this, starting the pool costs more than it saves
AUTO_WORKERS_MAX = 8  # beyond this the one writing process is the limit


def auto_workers(total_bytes: int | None) -> int:
    """How many parse processes an input of ``total_bytes`` gets by default: one per CPU this
    process may run on (at most 8) when there are two or more and the input is 16 MiB or more;
    else none (parse inline). Unknown sizes (stdin) parse inline.

    Measured on 2 CPUs, 200,000 plain monitoring Observations (75 MiB), the CLI whole-process:
    3.9 s inline, 3.2 s with 2 workers (1 worker: 4.0 s, 3: 3.3 s), for ~25 % more CPU.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if cpus < 2 or total_bytes is None or total_bytes < AUTO_WORKERS_BYTES:
        return 0
    return min(cpus, AUTO_WORKERS_MAX)


def chunks(records: Iterable[InputRecord], size: int) -> Iterator[list[InputRecord]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


_NBYTES = itemgetter(Parsed._fields.index("nbytes"))
_SOURCE = itemgetter(Parsed._fields.index("source"))
Piece = list[InputRecord] | NdjsonBlock
_WORKER_CHUNK = 2_000  # small pieces keep every worker busy; writes still go in big chunks


def _parsed_chunks(
    records: Iterable[InputRecord | NdjsonBlock],
    options: ParseOptions,
    workers: int,
    write_size: int,
    codec: Callable[[], BodyCodec | None] = lambda: None,
) -> Iterator[list[Parsed]]:
    """Parse results in chunks of about ``write_size``; with ``workers``, parsed in a pool,
    bodies compressed there with ``codec()``, the store's dictionary once it has one."""
    if workers <= 0:
        for piece in _pieces(records, write_size):
            yield parse_piece(piece, options)
        return
    from concurrent.futures import ProcessPoolExecutor  # multiprocessing: only with workers

    with ProcessPoolExecutor(max_workers=workers) as pool:
        # A bounded window of pieces in flight keeps memory flat and order stable.
        window: list[Any] = []
        pending: list[Parsed] = []
        for piece in _pieces(records, min(write_size, _WORKER_CHUNK)):
            window.append(pool.submit(_parse_paused, piece, options, codec()))
            if len(window) >= workers * 3:
                pending.extend(window.pop(0).result())
                if len(pending) >= write_size:
                    yield pending
                    pending = []
        for future in window:
            pending.extend(future.result())
        if pending:
            yield pending


def _parse_paused(piece: Piece, options: ParseOptions, codec: BodyCodec | None) -> list[Parsed]:
    """``parse_piece`` in a worker, its collector paused as the writer's is (see
    ``gc_paused``). A forked worker inherits the pause already; this holds it under any
    start method (spawn, forkserver), where the collector would walk every result as it is
    built."""
    with gc_paused():
        return parse_piece(piece, options, codec)


def _pieces(records: Iterable[InputRecord | NdjsonBlock], size: int) -> Iterator[Piece]:
    """Records in chunks of ``size``; a block of NDJSON lines goes alone, in its turn."""
    pending: list[InputRecord] = []
    for item in records:
        if isinstance(item, NdjsonBlock):
            if pending:
                yield pending
                pending = []
            yield item
            continue
        pending.append(item)
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending


def _records_or_blocks(
    files: Sequence[str], stdin: IO[bytes] | None, accounts: list[dict[str, Any]]
) -> Iterator[InputRecord | NdjsonBlock]:
    """``_records``, but NDJSON files as blocks of lines that workers split and parse: the
    writing process then only cuts at line breaks (their records are counted per file
    from the parse results, by source: each file is in ``files`` once)."""
    for name in files:
        if name == STDIN or not name.lower().endswith(NDJSON_SUFFIXES):
            yield from _records([name], stdin, accounts)
            continue
        account: dict[str, Any] = {"file": name, "records": 0}
        accounts.append(account)
        for item in ndjson_blocks(name):
            if isinstance(item, InputRecord):  # the file (or its rest) could not be read
                account["error"] = item.error
            yield item


def _records(
    files: Sequence[str], stdin: IO[bytes] | None, accounts: list[dict[str, Any]]
) -> Iterator[InputRecord]:
    """Every file's records, counted per file in ``accounts`` (with the error of a file that
    could not be read to its end)."""
    for name in files:
        account: dict[str, Any] = {"file": "<stdin>" if name == STDIN else name, "records": 0}
        accounts.append(account)
        for record in read_records(name, stdin):
            account["records"] += 1
            if record.error is not None and not record.raw and record.error.startswith(FILE_ERROR):
                account["error"] = record.error
            yield record


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
    accounts: list[dict[str, Any]] = []
    by_source: Counter[str] | None = None
    records: Iterable[InputRecord | NdjsonBlock]
    if workers > 0 and len(set(files)) == len(files):
        by_source = Counter()
        records = _records_or_blocks(files, stdin, accounts)
    else:
        records = _records(files, stdin, accounts)
    report = ingest_records(
        engine,
        records,
        source=", ".join(files),
        options=options,
        workers=workers,
        chunk_size=chunk_size,
        actor=actor,
        clock=clock,
        progress=progress,
        by_source=by_source,
    )
    if by_source is not None:
        for account in accounts:
            if account["file"] in by_source:  # read as blocks: counted as parsed
                account["records"] = by_source[account["file"]]
    report.files = accounts + [{"file": name, "not_read": why} for name, why in not_read]
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
    by_source: Counter[str] | None = None,
) -> IngestReport:
    """Ingest already-read records (the HTTP server and tests call this directly); blocks of
    NDJSON lines only with ``workers``. ``by_source`` counts the records parsed per source."""
    options = options or ParseOptions()
    started = time.perf_counter()
    batch_id = open_batch(engine, source, clock)
    report = IngestReport(batch_id=batch_id)
    totals = ChunkCounts()
    bytes_read = 0
    status = BatchStatus.FAILED
    codec: list[BodyCodec | None] = [None]  # the store's dictionary, for the workers
    try:
        with engine.connect() as conn, background_checkpoints(engine, conn) as checkpoints:
            parsed_chunks = _parsed_chunks(
                records, options, workers, chunk_size, codec=lambda: codec[0]
            )
            while True:
                with gc_paused():
                    parsed = next(parsed_chunks, None)
                    if parsed is None:
                        break
                    report.resources += len(parsed)
                    if by_source is not None:
                        by_source.update(map(_SOURCE, parsed))
                    bytes_read += sum(map(_NBYTES, parsed))
                    totals.add(write_chunk(conn, parsed, batch_id, clock()))
                    checkpoints.poke()
                    if workers and codec[0] is None:  # the first big chunk trains one
                        with conn.begin():
                            codec[0] = newest_codec(conn)
                    del parsed  # before the collector runs again: nothing left to walk
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
