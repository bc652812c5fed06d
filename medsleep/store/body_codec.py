"""How a resource's text becomes a body and back, without a connection: the zstd frame
format, the id left out, and compression with a dictionary given (what an ingest worker needs;
``store.bodies`` keeps the dictionaries and the rows). Imports no SQL, so parse workers can
start before the writing process has loaded SQLAlchemy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import zstandard

LEVEL = 3  # measured: level 9 or 19 is no smaller with a dictionary, and 5-50x slower
TRAIN_MIN_SAMPLES = 1000  # fewer make a dictionary that fits them, not the source
TRAIN_SAMPLES = 2000  # ~16 ms of training (monitoring Observations)
DICTIONARY_BYTES = 16_384

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
    if 0 in text:  # a NUL byte (an int membership test: memchr, 17 against 114 ns)
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


def train(samples: Sequence[bytes], dict_id: int) -> bytes:
    """A dictionary trained on up to ``TRAIN_SAMPLES`` of ``samples`` (texts already
    ``elided``), spread evenly over them."""
    step = max(1, len(samples) // TRAIN_SAMPLES)
    trained = zstandard.train_dictionary(
        DICTIONARY_BYTES, list(samples[::step][:TRAIN_SAMPLES]), level=LEVEL, dict_id=dict_id
    )
    return bytes(trained.as_bytes())


def codec_before_open(url: str) -> tuple[BodyCodec | None, int | None]:
    """What an ingest's parse workers can compress with before the store at ``url`` is
    opened: (the store's newest dictionary, None), or (None, 1) when an SQLite store has none
    yet (a fresh file): the first piece then trains one with id 1 and proposes it. (None,
    None) for other stores, whose dictionaries only the writing process reads."""
    if not url.startswith("sqlite:///"):
        return None, None
    path = url.removeprefix("sqlite:///").partition("?")[0]
    if path in ("", ":memory:"):
        return None, None
    codec = sqlite_newest_codec(path) if os.path.exists(path) else None
    return (codec, None) if codec is not None else (None, 1)


def sqlite_newest_codec(path: str) -> BodyCodec | None:
    """The newest dictionary of the SQLite store at ``path``, read with the standard library
    alone (before an ingest has loaded SQLAlchemy); None if it has none or cannot be read."""
    import sqlite3

    try:
        with closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT dict_id, data FROM body_dictionary ORDER BY dict_id DESC LIMIT 1"
            ).fetchone()
    except sqlite3.Error:
        return None
    return BodyCodec(int(row[0]), bytes(row[1])) if row else None


_COMPRESSORS: dict[int, zstandard.ZstdCompressor] = {}  # a worker's, by dict id


def decompress_with(codec: BodyCodec, body: bytes, key: str) -> bytes:
    """The original text of a body ``compress_with(codec, text, key)`` made (what
    ``store.bodies.BodyReader`` does, without a connection)."""
    return restored(_decompressor(codec).decompressobj().decompress(body), key)


@lru_cache(maxsize=4)
def _decompressor(codec: BodyCodec) -> zstandard.ZstdDecompressor:
    data = zstandard.ZstdCompressionDict(codec.data)
    return zstandard.ZstdDecompressor(dict_data=data, format=FORMAT)


def compress_with(codec: BodyCodec, text: bytes, key: str) -> bytes:
    """What ``store.bodies.BodyWriter.compress(text, key)`` gives with ``codec``'s dictionary."""
    made = _COMPRESSORS.get(codec.dict_id)
    if made is None:
        made = compressor(codec.dict_id, zstandard.ZstdCompressionDict(codec.data))
        _COMPRESSORS.clear()  # a new dictionary replaces the old one for good
        _COMPRESSORS[codec.dict_id] = made
    return made.compress(elided(text, key))
