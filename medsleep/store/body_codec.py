"""How a resource's text becomes a body and back, without a connection: the zstd frame
format, the id left out, and compression with a dictionary given (what an ingest worker needs;
``store.bodies`` keeps the dictionaries and the rows). Imports no SQL, so parse workers can
start before the writing process has loaded SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass

import zstandard

LEVEL = 3  # measured: level 9 or 19 is no smaller with a dictionary, and 5-50x slower

FORMAT = zstandard.FORMAT_ZSTD1_MAGICLESS


def params(dict_id: int) -> zstandard.ZstdCompressionParameters:
    # A frame as small as zstd makes it: no magic number (every body is one), no checksum
    # (SQLite and PostgreSQL check pages), no content size (read with a stream), and a dict id
    # of one byte (dictionaries are numbered 1, 2, ... in this store). Measured on the plain
    # monitoring input: 41 -> 32 bytes a body.
    return zstandard.ZstdCompressionParameters.from_level(
        LEVEL,
        format=FORMAT,
        write_checksum=0,
        write_content_size=0,
        write_dict_id=int(dict_id > 0),
    )


def compressor(
    dict_id: int, data: zstandard.ZstdCompressionDict | None
) -> zstandard.ZstdCompressor:
    return zstandard.ZstdCompressor(dict_data=data, compression_params=params(dict_id))


def elided(text: bytes, key: str) -> bytes:
    """``text`` with its own id (``"id":"<id>"``, already in the key) left out: a raw NUL
    byte stands for it, which JSON text never holds (a control character must be escaped)."""
    if b"\x00" in text:
        raise ValueError(f"{key}: a NUL byte in a resource's text")
    rid = key.partition("/")[2].encode()
    return text.replace(b'"' + rid + b'"', b'"\x00"', 1) if rid else text


def restored(text: bytes, key: str) -> bytes:
    rid = key.partition("/")[2].encode()
    return text.replace(b'"\x00"', b'"' + rid + b'"', 1) if rid else text


@dataclass(frozen=True)
class BodyCodec:
    """The store's newest dictionary, as a process without a connection (an ingest worker)
    needs it to compress bodies exactly as ``store.bodies.BodyWriter`` would."""

    dict_id: int
    data: bytes


_COMPRESSORS: dict[int, zstandard.ZstdCompressor] = {}  # a worker's, by dict id


def compress_with(codec: BodyCodec, text: bytes, key: str) -> bytes:
    """What ``store.bodies.BodyWriter.compress(text, key)`` gives with ``codec``'s dictionary."""
    made = _COMPRESSORS.get(codec.dict_id)
    if made is None:
        made = compressor(codec.dict_id, zstandard.ZstdCompressionDict(codec.data))
        _COMPRESSORS.clear()  # a new dictionary replaces the old one for good
        _COMPRESSORS[codec.dict_id] = made
    return made.compress(elided(text, key))
