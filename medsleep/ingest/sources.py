"""Read FHIR input (NDJSON, JSON resources, Bundles; files, folders, stdin) as records.

Reading is streaming: NDJSON is read a line at a time, so memory stays flat whatever the
file size. A record that cannot even be parsed as JSON still becomes a record (with its
error) so that it is quarantined, not lost.
"""

from __future__ import annotations

import gzip
import io
import itertools
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from medsleep.errors import InputError

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")
STDIN = "-"
FILE_ERROR = "cannot read"  # how the error record of an unreadable file (or rest) begins
BOM = b"\xef\xbb\xbf"
_READ_BUFFER = 1 << 20
_NOT_INPUT = "not an input suffix (.ndjson, .jsonl, .json, optionally .gz; any case)"


class InputRecord(NamedTuple):
    """One resource as read, before any FHIR checks (a NamedTuple: cheap to send to workers)."""

    source: str
    position: str
    raw: bytes
    resource: dict[str, Any] | None = None  # already parsed (Bundle entries)
    error: str | None = None  # the record is not JSON at all, or its file cannot be read
    full_url: str | None = None
    subject_target: str | None = None  # a urn:uuid subject resolved inside its Bundle
    nbytes: int = 0


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
                records = read_document(name, handle.read(), "")
            else:  # named explicitly: a pipe, a device, any suffix; sniffed like stdin
                records = _read_stream(name, handle)
            for record in records:
                last = record.position
                yield record
    except (OSError, EOFError, zlib.error) as exc:
        where = "file" if last == "start" else f"after {last}"
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        yield InputRecord(name, where, b"", error=f"{FILE_ERROR} {where} of {name}: {reason}")


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    """Lines ending in LF, CRLF or a lone CR, read in 1 MiB blocks (memory stays flat)."""
    rest = b""
    # read1: what one step of the underlying stream gives, so that a truncated .gz yields
    # every line decompressed before the break (read() would drop the last block with it)
    read = getattr(handle, "read1", handle.read)
    while block := read(_READ_BUFFER):
        lines = (rest + block).splitlines(keepends=True)
        rest = lines.pop()
        if rest.endswith(b"\n"):
            lines.append(rest)
            rest = b""
        # else the block ends mid-line, or between the CR and LF of one line break: keep it
        yield from lines
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


def read_ndjson(source: str, handle: Iterable[bytes]) -> Iterator[InputRecord]:
    new_record = tuple.__new__  # InputRecord(...) with keywords costs 3x as much per line
    if isinstance(handle, io.IOBase):
        handle = _lines(handle)  # type: ignore[arg-type]
    for number, line in enumerate(handle, start=1):
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


_READ_WHOLE = ("Observation", "Patient")  # a Patient gives the dashboard's headers


def read_document(source: str, data: bytes, prefix: str) -> Iterator[InputRecord]:
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
    targets = _bundle_targets(entries)
    share = len(data) // max(1, len(entries))
    for index, entry in enumerate(entries):
        where = f"{prefix}entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if resource is None:
            continue  # e.g. a DELETE request: no resource to read
        if isinstance(resource, dict) and resource.get("resourceType") not in _READ_WHOLE:
            # Skipped, never stored nor quarantined: counted without re-serialising it (in
            # Synthea Bundles these are most of the bytes: claims, encounters, ...).
            kind = {"resourceType": resource.get("resourceType")}
            yield InputRecord(source, where, b"", resource=kind, nbytes=share)
            continue
        raw = orjson.dumps(resource)
        if not isinstance(resource, dict):
            yield InputRecord(
                source, where, raw, error="entry.resource is not an object", nbytes=share
            )
            continue
        full_url = entry.get("fullUrl")
        subject = resource.get("subject")
        ref = subject.get("reference") if isinstance(subject, dict) else None
        target = targets.get(ref) if isinstance(ref, str) else None
        yield InputRecord(
            source,
            where,
            raw,
            resource=resource,
            full_url=full_url if isinstance(full_url, str) else None,
            subject_target=target,
            nbytes=share,
        )


def _bundle_targets(entries: list[Any]) -> dict[str, str]:
    """fullUrl -> ``Type/id`` for every entry that has both, for urn:uuid references."""
    targets: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        full_url, resource = entry.get("fullUrl"), entry.get("resource")
        if isinstance(full_url, str) and isinstance(resource, dict):
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(rtype, str) and isinstance(rid, str):
                targets[full_url] = f"{rtype}/{rid}"
            elif isinstance(rtype, str) and full_url.startswith("urn:uuid:"):
                targets[full_url] = f"{rtype}/{full_url.removeprefix('urn:uuid:')}"
    return targets
