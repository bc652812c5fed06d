"""Parsing ahead of the writer: input files (or records) become parse results in chunks of
about the write size, parsed inline or in a pool of parse processes.

Imports no SQL, nor do the modules parsing needs: a parse worker loads only what parsing
uses (a test holds it).
"""

from __future__ import annotations

import gc
import os
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial
from itertools import islice
from operator import itemgetter
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from medsleep.ingest.parsing import Parsed, ParseOptions, parse_and_train, parse_piece
from medsleep.ingest.sources import (
    FILE_ERROR,
    NDJSON_SUFFIXES,
    STDIN,
    InputRecord,
    NdjsonBlock,
    ndjson_blocks,
    read_records,
)
from medsleep.store.body_codec import BodyCodec, decompress_with

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

AUTO_WORKERS_BYTES = 16 * 2**20  # below this, starting the pool costs more than it saves
AUTO_WORKERS_MAX = 8  # beyond this the one writing process is the limit
WORKER_CHUNK = 2_000  # small pieces keep every worker busy; writes still go in big chunks
# Pieces a worker gets before the writing process opens the store (``ParseStream.start``):
# enough for the ~0.2 s in which it loads SQLAlchemy and the store (about 12,000 records a
# worker-second on 2 CPUs).
START_PIECES_PER_WORKER = 6

Piece = list[InputRecord] | NdjsonBlock
Trained = tuple[list[tuple[Any, ...]], BodyCodec | None]  # a first piece's results, its codec
_SOURCE = itemgetter(Parsed._fields.index("source"))


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


class ParseStream:
    """Parse results of ``records`` in chunks of about ``write_size``.

    With ``workers``, a pool parses pieces of ``WORKER_CHUNK`` records (or NDJSON blocks) in
    order, a window of three a worker in flight; pieces submitted once ``codec`` is set (the
    store's dictionary) come back with their bodies compressed. Use it as a context manager:
    leaving it stops the pool.
    """

    def __init__(
        self,
        records: Iterable[InputRecord | NdjsonBlock],
        *,
        options: ParseOptions,
        workers: int = 0,
        write_size: int = 10_000,
    ) -> None:
        self.options = options
        self.workers = workers
        self.write_size = write_size
        self.codec: BodyCodec | None = None  # set by the writer once the store has one
        # a dictionary the first piece trained (``start``), for the writer to adopt or reject
        # before it writes anything: see ``proposal``
        self._proposed: BodyCodec | None = None
        self._rejected: BodyCodec | None = None
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._accounts: list[dict[str, Any]] = []  # of_files: one per file, see accounts
        self._by_source: Counter[str] | None = None  # of_files with workers: records per file
        self._records = records
        # each piece's future, with the codec it was handed (see reject_proposal)
        self._window: deque[tuple[Future[list[tuple[Any, ...]]], BodyCodec | None]] = deque()
        self._pool: ProcessPoolExecutor | None = None
        self._pieces: Iterator[Piece] = iter(())
        if workers > 0:
            from concurrent.futures import ProcessPoolExecutor  # multiprocessing: with workers

            self._pool = ProcessPoolExecutor(max_workers=workers, initializer=_yield_to_writer)
            self._pieces = _pieces(records, min(write_size, WORKER_CHUNK))

    @classmethod
    def of_files(
        cls,
        files: Sequence[str],
        *,
        options: ParseOptions,
        stdin: IO[bytes] | None = None,
        workers: int = 0,
        write_size: int = 10_000,
    ) -> ParseStream:
        """The records of files already listed by ``walk_inputs``, each counted in
        ``accounts``. With workers, NDJSON files go as blocks of lines that workers split."""
        accounts: list[dict[str, Any]] = []
        by_source: Counter[str] | None = None
        records: Iterable[InputRecord | NdjsonBlock]
        if workers > 0 and len(set(files)) == len(files):
            by_source = Counter()
            records = _records_or_blocks(files, stdin, accounts)
        else:
            records = _records(files, stdin, accounts)
        stream = cls(records, options=options, workers=workers, write_size=write_size)
        stream._accounts, stream._by_source = accounts, by_source
        return stream

    def accounts(self) -> list[dict[str, Any]]:
        """Per file of ``of_files``: ``{"file", "records"}``, with ``"error"`` when it could not
        be read to its end; final once the stream is read (NDJSON blocks are counted from
        their parse results)."""
        if self._by_source is not None:
            for account in self._accounts:
                if account["file"] in self._by_source:
                    account["records"] = self._by_source[account["file"]]
        return self._accounts

    def chunks(self) -> Iterator[list[Parsed]]:
        """The results in order."""
        for chunk in self._chunks():
            if self._by_source is not None:
                self._by_source.update(map(_SOURCE, chunk))
            yield chunk

    def start(self, codec: BodyCodec | None, *, propose: int | None = None) -> None:
        """Hand workers their first pieces now, before the writing process opens the store:
        they parse while it loads SQLAlchemy (~0.2 s on one CPU, the other idle otherwise).

        ``codec``: the store's newest dictionary, read without SQL (``codec_before_open``);
        or ``propose``: the store has none, so the first piece trains one with this id (see
        ``parsing.parse_and_train``) and the rest are compressed with it: its ``proposal``,
        for the writer to adopt or reject. Neither: nothing starts early (the first chunk written
        trains the store's dictionary, as without ``start``).
        """
        if self._pool is None or self._window or self._starting is not None:
            return
        if codec is not None:
            self.codec = codec
            self._submit_first(self.workers * START_PIECES_PER_WORKER)
        elif propose is not None:
            piece = next(self._pieces, None)
            if piece is None:
                return
            # Submitted here, on the calling thread: the first submission forks the workers,
            # and a fork must not happen while another thread may hold an import's lock.
            first = self._pool.submit(_train_paused, piece, self.options, propose)
            self._starting = threading.Thread(
                target=self._start_after_training, args=(first,), name="medsleep-parse-start"
            )
            self._starting.start()

    def _start_after_training(self, first: Future[Trained]) -> None:
        # On its own thread, while the writing process imports: the first piece is the only
        # one parsed without the dictionary; the others wait for it (~40 ms).
        try:
            trained: Future[list[tuple[Any, ...]]] = Future()
            try:
                results, codec = first.result()
            except BaseException as exc:  # the writer meets it at its first result  # noqa: BLE001
                trained.set_exception(exc)
                self._window.append((trained, None))
                return
            trained.set_result(results)
            self._window.append((trained, codec))
            if codec is not None:
                self._proposed = self.codec = codec
            self._submit_first(self.workers * START_PIECES_PER_WORKER - 1)
        except BaseException as exc:  # noqa: BLE001 - raised again in the writer's thread
            self._start_error = exc

    def _submit_first(self, n: int) -> None:
        for piece in islice(self._pieces, n):
            self._submit(piece)

    def _submit(self, piece: Piece) -> None:
        assert self._pool is not None
        codec = self.codec
        self._window.append((self._pool.submit(_parse_paused, piece, self.options, codec), codec))

    def proposal(self) -> BodyCodec | None:
        """The dictionary the first piece trained (see ``start``), once it is known: the
        writer must adopt it or ``reject_proposal`` before it writes a chunk."""
        self._join_start()
        return self._proposed

    def reject_proposal(self, store_codec: BodyCodec | None) -> None:
        """The store had a dictionary after all (a concurrent ingest trained one first): the
        bodies compressed with the proposal come back as their texts from now on, and the
        pieces still to hand out get ``store_codec``."""
        self._rejected, self._proposed, self.codec = self._proposed, None, store_codec

    def _join_start(self) -> None:
        self._join_starting()
        if self._start_error is not None:
            raise self._start_error

    def _join_starting(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    def _next_results(self) -> Iterator[Parsed]:
        future, codec = self._window.popleft()
        results = map(as_parsed, future.result())
        rejected = self._rejected
        if rejected is None or codec is not rejected:
            return results
        return (_unpacked(item, rejected) for item in results)

    def _chunks(self) -> Iterator[list[Parsed]]:
        if self._pool is None:
            for piece in _pieces(self._records, self.write_size):
                yield parse_piece(piece, self.options)
            return
        self._join_start()
        pending: list[Parsed] = []
        limit = self.workers * 3
        for piece in self._pieces:
            self._submit(piece)
            while len(self._window) >= limit:
                pending.extend(self._next_results())
                if len(pending) >= self.write_size:
                    yield pending
                    pending = []
        while self._window:
            pending.extend(self._next_results())
        if pending:
            yield pending

    def close(self) -> None:
        """Stop the pool, dropping the pieces not yet parsed."""
        self._join_starting()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._window.clear()

    def __enter__(self) -> ParseStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# Measured on 2 vCPUs, plain monitoring NDJSON (154,352 Observations), the CLI with its 2
# default workers, 8 alternated rounds: 5.43 s median wall at the writer's priority, 5.10 s
# at 10 below it.
WORKER_NICENESS = 10


def _yield_to_writer() -> None:
    """A parse worker runs at a lower priority than the writing process: the one writer is
    what an ingest waits for, and with as many workers as CPUs it would otherwise share its
    CPU with them. Other work on the host keeps its share, too."""
    os.nice(WORKER_NICENESS)


def _parse_paused(
    piece: Piece, options: ParseOptions, codec: BodyCodec | None
) -> list[tuple[Any, ...]]:
    """``parse_piece`` in a worker, its collector paused as the writer's is (see
    ``gc_paused``). A forked worker inherits the pause already; this holds it under any
    start method (spawn, forkserver), where the collector would walk every result as it is
    built.

    The results go back as plain tuples (``as_parsed`` makes them ``Parsed`` again): a
    NamedTuple pickles through Python code, its ``__getnewargs__`` and ``__new__``, once a
    record. Measured on 2,064 plain Observations: pickling 1.45 -> 0.72 µs a record in the
    worker, unpickling 0.84 -> 0.38 µs in the writing process."""
    with gc_paused():
        return list(map(tuple, parse_piece(piece, options, codec)))


as_parsed = partial(tuple.__new__, Parsed)  # a plain tuple of Parsed's fields, in C


def _train_paused(piece: Piece, options: ParseOptions, dict_id: int) -> Trained:
    """``parsing.parse_and_train`` in a worker, as ``_parse_paused`` does ``parse_piece``."""
    with gc_paused():
        results, codec = parse_and_train(piece, options, dict_id)
        return list(map(tuple, results)), codec


def _unpacked(item: Parsed, codec: BodyCodec) -> Parsed:
    """``item`` with its text again where its body was compressed with ``codec``."""
    if item.packed_with != codec.dict_id:
        return item
    return item._replace(body=decompress_with(codec, item.body, item.key), packed_with=None)


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
