"""Request bodies within their size limits: whole JSON documents, and NDJSON streamed line by
line in constant memory into the synchronous ingest pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import IO, cast

import anyio
import anyio.from_thread
from starlette.requests import ClientDisconnect, Request

from medsleep.ingest.request import InputAbortedError
from medsleep.ingest.sources import InputRecord, read_ndjson
from medsleep.server.fhir_http import FhirError


class BodyTooLargeError(InputAbortedError):
    """The request body, or one NDJSON line of it, is over its size limit."""


class BodyTimeoutError(InputAbortedError):
    """The client sent nothing more of its body within the body timeout."""


def body_timeout(seconds: float) -> FhirError:
    return FhirError(408, "timeout", f"the request body stalled: nothing arrived for {seconds:g} s")


def too_large(diagnostics: str) -> FhirError:
    return FhirError(413, "too-costly", diagnostics)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_media_type(request: Request, allowed: tuple[str, ...]) -> None:
    found = media_type(request)
    if found not in allowed:
        raise FhirError(
            415,
            "not-supported",
            f"Content-Type {found or '(none)'!r} is not accepted here; use {allowed[0]}",
        )


def declared_length(request: Request) -> int | None:
    text = request.headers.get("content-length")
    if text is None:
        return None
    if not text.isdigit():
        raise FhirError(400, "invalid", "Content-Length is not a whole number")
    return int(text)


async def _next(stream: AsyncIterator[bytes], timeout: float) -> bytes:
    """The next piece of a body, or BodyTimeoutError if none comes within ``timeout``."""
    try:
        with anyio.fail_after(timeout):
            return await stream.__anext__()
    except TimeoutError as exc:
        raise BodyTimeoutError(
            f"the request body stalled: nothing arrived for {timeout:g} s"
        ) from exc


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit`` bytes, and
    (408) when the client stops sending it for ``timeout`` seconds."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_large(f"the body is {declared:,} bytes; the limit is {limit:,}")
    parts: list[bytes] = []
    size = 0
    stream = request.stream()
    while True:
        try:
            part = await _next(stream, timeout)
        except StopAsyncIteration:
            break
        except BodyTimeoutError as exc:
            raise body_timeout(timeout) from exc
        size += len(part)
        if size > limit:
            raise too_large(f"the body is over the limit of {limit:,} bytes")
        parts.append(part)
    return b"".join(parts)


def blocking_chunks(stream: AsyncIterator[bytes], timeout: float) -> Iterator[bytes]:
    """Pull an async body stream from a worker thread (one chunk in memory at a time);
    BodyTimeoutError when the client stops sending for ``timeout`` seconds."""
    while True:
        try:
            yield anyio.from_thread.run(_next, stream, timeout)
        except StopAsyncIteration:
            return
        except ClientDisconnect as exc:
            raise InputAbortedError("the client disconnected before the end of the body") from exc


def ndjson_lines(chunks: Iterable[bytes], max_line: int, max_total: int) -> Iterator[bytes]:
    """Lines of an NDJSON byte stream; over-long lines and bodies raise BodyTooLargeError."""
    buffer = bytearray()
    total = lines = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_total:
            raise BodyTooLargeError(f"the NDJSON body is over the limit of {max_total:,} bytes")
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            lines += 1
            if end + 1 - start > max_line:
                raise BodyTooLargeError(f"line {lines} is over the limit of {max_line:,} bytes")
            yield bytes(buffer[start : end + 1])
            start = end + 1
        del buffer[:start]
        if len(buffer) > max_line:
            raise BodyTooLargeError(f"line {lines + 1} is over the limit of {max_line:,} bytes")
    if buffer.strip():
        yield bytes(buffer)


def ndjson_records(
    source: str, chunks: Iterable[bytes], max_line: int, max_total: int
) -> Iterator[InputRecord]:
    """Records of an NDJSON body, read exactly as ``medsleep ingest`` reads an NDJSON file."""
    lines = ndjson_lines(chunks, max_line, max_total)
    return read_ndjson(source, cast(IO[bytes], lines))
