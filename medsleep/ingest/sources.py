"""Read FHIR input (NDJSON, JSON resources, Bundles; files, folders, stdin) as records.

Reading is streaming: NDJSON is read a line at a time, so memory stays flat whatever the
file size. A record that cannot even be parsed as JSON still becomes a record (with its
error) so that it is quarantined, not lost.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

import orjson

from medsleep.errors import InputError
from medsleep.ingest.bundles import (
    WHOLE_LIMIT,
    NotDecodedWhole,
    bundle_entries_records,
    looks_like_a_bundle,
    read_whole_bundle,
    stream_bundle,
)
from medsleep.ingest.records import InputRecord

__all__ = ["InputRecord", "read_document", "read_records", "walk_inputs"]

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")
STDIN = "-"
FILE_ERROR = "cannot read"  # how the error record of an unreadable file (or rest) begins
BOM = b"\xef\xbb\xbf"
_READ_BUFFER = 1 << 20
_BLOCK_LIMIT = 8 * _READ_BUFFER  # a "line" longer than this without LF: cut at a lone CR
_NOT_INPUT = "not an input suffix (.ndjson, .jsonl, .json, optionally .gz; any case)"


@dataclass(frozen=True)
class WalkedInputs:
    """What a list of paths expands to: the files to read, and what was walked but not read."""

    files: list[str]
    not_read: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def is_input_file(path: Path) -> bool:
    return path.name.lower().endswith(NDJSON_SUFFIXES + JSON_SUFFIXES)


def walk_inputs(paths: Iterable[str]) -> WalkedInputs:
    """Files to read, in a stable order (folders walked recursively), and every entry of a
    walked folder that is not read, with the reason. A path named explicitly is read whatever
    it is (a FIFO from ``<(cat f)``, ``/dev/stdin``): only what does not exist is an error."""
    walked = WalkedInputs([])
    for name in paths:
        if name == STDIN:
            walked.files.append(STDIN)
            continue
        path = Path(name)
        if path.is_dir():
            for entry in sorted(path.rglob("*")):
                if entry.is_dir():
                    continue
                if not entry.is_file():
                    walked.not_read.append((str(entry), "not a regular file"))
                elif is_input_file(entry):
                    walked.files.append(str(entry))
                else:
                    walked.not_read.append((str(entry), _NOT_INPUT))
        elif path.exists():
            walked.files.append(str(path))
        else:
            raise InputError(f"no such file or folder: {name}")
    return walked


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files to read, in a stable order; folders are walked recursively."""
    return walk_inputs(paths).files


def total_bytes(files: Iterable[str]) -> int | None:
    """The bytes to read, or None when unknown (stdin, a pipe, a device)."""
    total = 0
    for name in files:
        if name == STDIN or not Path(name).is_file():
            return None
        total += Path(name).stat().st_size
    return total


def _open_binary(name: str) -> IO[bytes]:
    if name.lower().endswith(".gz"):
        return gzip.open(name, "rb")  # type: ignore[return-value]
    # 1 MiB reads, not 8 KiB: fewer system calls for the same bytes (closed by the caller)
    return open(name, "rb", buffering=_READ_BUFFER)  # noqa: SIM115


def read_records(name: str, stdin: IO[bytes] | None = None) -> Iterator[InputRecord]:
    """Records of one file (or stdin when ``name`` is ``-``).

    A file that cannot be opened, or whose rest cannot be read (a corrupt or truncated
    ``.gz``, an I/O error), ends in one error record naming where reading stopped: it is
    quarantined with its reason and the batch goes on with the next file.
    """
    if name == STDIN:
        if stdin is None:
            raise InputError("stdin is not available")
        yield from _read_stream("<stdin>", stdin)
        return
    last = "start"
    try:
        with _open_binary(name) as handle:
            lower = name.lower()
            if lower.endswith(NDJSON_SUFFIXES):
                records = read_ndjson(name, handle)
            elif lower.endswith(JSON_SUFFIXES):
                records = read_json_file(name, handle)
            else:  # named explicitly: a pipe, a device, any suffix; sniffed like stdin
                records = _read_stream(name, handle)
            for record in records:
                last = record.position
                yield record
    except _READ_ERRORS as exc:
        yield _unreadable(name, "file" if last == "start" else f"after {last}", exc)


_READ_ERRORS = (OSError, EOFError, zlib.error)


def _unreadable(name: str, where: str, exc: BaseException) -> InputRecord:
    """The error record of a file that could not be opened, or whose rest could not be read."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return InputRecord(name, where, b"", error=f"{FILE_ERROR} {where} of {name}: {reason}")


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    """Lines ending in LF, CRLF or a lone CR, read in 1 MiB blocks (memory stays flat)."""
    for block in _whole_lines(handle):
        yield from block.splitlines(keepends=True)


def _whole_lines(handle: IO[bytes]) -> Iterator[bytes]:
    """``handle``'s bytes in blocks of about 1 MiB, each cut after a line break."""
    rest = b""
    # read1: what one step of the underlying stream gives, so that a truncated .gz yields
    # every line decompressed before the break (read() would drop the last block with it)
    read = getattr(handle, "read1", handle.read)
    while block := read(_READ_BUFFER):
        data = rest + block
        # cut after the last LF: a CRLF is never split, and a lone CR at the end may be the
        # first half of one (a longer stretch without LF is cut at a lone CR)
        cut = data.rfind(b"\n") + 1
        if not cut and len(data) > _BLOCK_LIMIT:
            cut = data.rfind(b"\r", 0, len(data) - 1) + 1
        if cut:
            yield data[:cut]
            rest = data[cut:]
        else:
            rest = data
    if rest:
        yield rest


def _read_stream(source: str, stream: IO[bytes]) -> Iterator[InputRecord]:
    # NDJSON or one (pretty-printed) JSON document: the first line tells. It is a document
    # only when that line is the unfinished start of one (the error is at its very end);
    # any other first line is NDJSON, and a broken first line is quarantined alone.
    lines = _lines(stream)
    first = b""
    for line in lines:
        if line.strip():
            first = line
            break
    if not first:
        return
    head = first.strip().removeprefix(BOM)
    try:
        orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        if exc.pos >= len(head) and head[:1] in (b"{", b"["):
            yield from _read_document_or_lines(source, first + b"".join(lines))
            return
    yield from read_ndjson(source, itertools.chain([first], lines))


def _read_document_or_lines(source: str, data: bytes) -> Iterator[InputRecord]:
    """One document; if it is not one after all, its lines one by one."""
    try:
        orjson.loads(data.strip().removeprefix(BOM))
    except orjson.JSONDecodeError:
        yield from read_ndjson(source, io.BytesIO(data))
        return
    yield from read_document(source, data, "")


def read_ndjson(source: str, handle: Iterable[bytes], first_line: int = 1) -> Iterator[InputRecord]:
    """The records of NDJSON lines; ``first_line``: the number of the first (a block's)."""
    new_record = tuple.__new__  # InputRecord(...) with keywords costs 3x as much per line
    if isinstance(handle, io.IOBase):
        handle = _lines(handle)  # type: ignore[arg-type]
    for number, line in enumerate(handle, start=first_line):
        stripped = line.strip()
        if not stripped:
            continue
        if number == 1:
            stripped = stripped.removeprefix(BOM)
        if stripped.find(b'"Bundle"', 0, 200) >= 0:
            yield from read_document(source, stripped, f"line {number} ")
            continue
        # fields: source, position, raw, resource, error, full_url, subject_target, nbytes
        yield new_record(
            InputRecord, (source, f"line {number}", stripped, None, None, None, None, len(line))
        )


class NdjsonBlock(NamedTuple):
    """Whole lines of an NDJSON file, for a worker process to split and parse: ``data``, or,
    when that is empty, the ``length`` bytes at ``offset`` of the (regular, uncompressed)
    file, which the worker reads itself."""

    source: str
    first_line: int
    data: bytes
    offset: int = 0
    length: int = 0


def ndjson_blocks(name: str) -> Iterator[NdjsonBlock | InputRecord]:
    """An NDJSON file as blocks of whole lines (``read_records``'s lines, numbered alike), for
    ``--workers``: the reading process only cuts at line breaks, workers split and parse.

    A regular file's blocks go as offsets: its bytes then never pass through the pipe to the
    workers (pickled, sent and received once more: ~0.1 s of the writing process's CPU a
    75 MiB file). A ``.gz`` file's go as their bytes, decompressed once.

    A file that cannot be opened or read to its end ends in one error record, as in
    ``read_records``.
    """
    line = 1
    try:
        with _open_binary(name) as handle:
            by_offset = not name.lower().endswith(".gz") and os.path.isfile(name)
            offset = 0
            for data in _whole_lines(handle):
                if by_offset:
                    yield NdjsonBlock(name, line, b"", offset, len(data))
                    offset += len(data)
                else:
                    yield NdjsonBlock(name, line, data)
                line += line_count(data)
    except _READ_ERRORS as exc:
        yield _unreadable(name, "file" if line == 1 else f"after line {line - 1}", exc)


def line_count(data: bytes) -> int:
    """``len(data.splitlines())`` without making the lines (a third of the time): LF, CRLF and
    lone CR each end one, and a rest without a break is one more."""
    count = data.count(b"\n")
    if b"\r" in data:
        count += data.count(b"\r") - data.count(b"\r\n")
    if data and data[-1:] not in (b"\n", b"\r"):
        count += 1
    return count


def block_records(block: NdjsonBlock) -> Iterator[InputRecord]:
    """The records of one block, exactly as ``read_records`` gives them for its lines; a
    block by offset whose bytes are no longer all there (the file was cut short meanwhile)
    ends in the file's error record."""
    data = block.data
    if not data and block.length:
        try:
            with open(block.source, "rb") as handle:
                handle.seek(block.offset)
                data = handle.read(block.length)
            if len(data) != block.length:
                raise EOFError(f"cut short to {block.offset + len(data):,} bytes while read")
        except _READ_ERRORS as exc:
            where = "file" if block.first_line == 1 else f"after line {block.first_line - 1}"
            yield _unreadable(block.source, where, exc)
            return
    yield from read_ndjson(block.source, data.splitlines(keepends=True), block.first_line)


def read_json_file(
    name: str, handle: IO[bytes], whole_limit: int = WHOLE_LIMIT
) -> Iterator[InputRecord]:
    """One JSON document: read whole up to ``whole_limit`` bytes, streamed entry by entry
    beyond that when it is a Bundle (peak memory then stays flat whatever its size)."""
    head = handle.read(whole_limit + 1)
    if len(head) > whole_limit and looks_like_a_bundle(head[:4096]):
        yield from stream_bundle(name, head, handle)
    else:
        yield from read_document(name, head + handle.read(), "")


def read_document(source: str, data: bytes, prefix: str) -> Iterator[InputRecord]:
    """The records of one JSON document in memory: a Bundle's entries, or the resource."""
    position = prefix.strip() or "document"
    text = data.lstrip().removeprefix(BOM)
    try:
        records = read_whole_bundle(source, text, prefix)
    except NotDecodedWhole:
        yield from _read_document_with_orjson(source, data, prefix)
        return
    if records is None:  # one resource, not a Bundle
        yield InputRecord(source, position, text, nbytes=len(data))
        return
    yield from records


def _read_document_with_orjson(source: str, data: bytes, prefix: str) -> Iterator[InputRecord]:
    # What msgspec's typed decode declines: invalid JSON, a non-object, odd entries. Each
    # becomes a record with orjson's own message; plain entries still go by resourceType.
    position = prefix.strip() or "document"
    try:
        document = orjson.loads(data.lstrip().removeprefix(BOM))
    except orjson.JSONDecodeError as exc:
        yield InputRecord(source, position, data, error=f"invalid JSON: {exc}", nbytes=len(data))
        return
    if not isinstance(document, dict):
        yield InputRecord(source, position, data, error="not a JSON object", nbytes=len(data))
        return
    if document.get("resourceType") != "Bundle":
        yield InputRecord(source, position, data, resource=document, nbytes=len(data))
        return
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        yield InputRecord(
            source, position, data, error="Bundle.entry is not a list", nbytes=len(data)
        )
        return
    share = len(data) // max(1, len(entries))
    yield from bundle_entries_records(source, prefix, entries, share)
