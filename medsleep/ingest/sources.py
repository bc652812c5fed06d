"""Read FHIR input (NDJSON, JSON resources, Bundles; files, folders, stdin) as records.

Reading is streaming: NDJSON is read a line at a time, so memory stays flat whatever the
file size. A record that cannot even be parsed as JSON still becomes a record (with its
error) so that it is quarantined, not lost.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from medsleep.errors import InputError

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")
STDIN = "-"
_READ_BUFFER = 1 << 20


class InputRecord(NamedTuple):
    """One resource as read, before any FHIR checks (a NamedTuple: cheap to send to workers)."""

    source: str
    position: str
    raw: bytes
    resource: dict[str, Any] | None = None  # already parsed (Bundle entries)
    error: str | None = None  # the record is not JSON at all
    full_url: str | None = None
    subject_target: str | None = None  # a urn:uuid subject resolved inside its Bundle
    nbytes: int = 0


def is_input_file(path: Path) -> bool:
    return path.name.endswith(NDJSON_SUFFIXES + JSON_SUFFIXES)


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files to read, in a stable order; folders are walked recursively."""
    files: list[str] = []
    for name in paths:
        if name == STDIN:
            files.append(STDIN)
            continue
        path = Path(name)
        if path.is_dir():
            files.extend(
                str(p) for p in sorted(path.rglob("*")) if p.is_file() and is_input_file(p)
            )
        elif path.is_file():
            files.append(str(path))
        else:
            raise InputError(f"no such file or folder: {name}")
    return files


def total_bytes(files: Iterable[str]) -> int | None:
    sizes = [Path(f).stat().st_size for f in files if f != STDIN]
    return None if STDIN in files else sum(sizes)


def _open_binary(name: str) -> IO[bytes]:
    if name.endswith(".gz"):
        return gzip.open(name, "rb")  # type: ignore[return-value]
    # 1 MiB reads, not 8 KiB: fewer system calls for the same bytes (closed by the caller)
    return open(name, "rb", buffering=_READ_BUFFER)  # noqa: SIM115


def read_records(name: str, stdin: IO[bytes] | None = None) -> Iterator[InputRecord]:
    """Records of one file (or stdin when ``name`` is ``-``)."""
    if name == STDIN:
        if stdin is None:
            raise InputError("stdin is not available")
        yield from _read_stream("<stdin>", stdin, sniff=True)
        return
    try:
        handle: IO[bytes] = _open_binary(name)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror}") from exc
    with handle:
        try:
            if name.endswith(NDJSON_SUFFIXES):
                yield from read_ndjson(name, handle)
            else:
                yield from read_document(name, handle.read(), "")
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read {name}: {exc}") from exc


def _read_stream(source: str, stream: IO[bytes], sniff: bool) -> Iterator[InputRecord]:
    # stdin may hold NDJSON or one (pretty-printed) JSON document: the first line tells.
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    if not first:
        return
    try:
        orjson.loads(first)
    except orjson.JSONDecodeError:
        yield from read_document(source, first + stream.read(), "")
        return
    yield from read_ndjson(source, io.BufferedReader(_Prepend(first, stream)))


class _Prepend(io.RawIOBase):
    """A byte stream that yields ``head`` and then the rest of ``tail``."""

    def __init__(self, head: bytes, tail: IO[bytes]) -> None:
        self._head, self._tail = head, tail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._tail.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_ndjson(source: str, handle: IO[bytes]) -> Iterator[InputRecord]:
    new_record = tuple.__new__  # InputRecord(...) with keywords costs 3x as much per line
    for number, line in enumerate(handle, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.find(b'"Bundle"', 0, 200) >= 0:
            yield from read_document(source, stripped, f"line {number} ")
            continue
        # fields: source, position, raw, resource, error, full_url, subject_target, nbytes
        yield new_record(
            InputRecord, (source, f"line {number}", stripped, None, None, None, None, len(line))
        )


def read_document(source: str, data: bytes, prefix: str) -> Iterator[InputRecord]:
    position = prefix.strip() or "document"
    try:
        document = orjson.loads(data)
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
