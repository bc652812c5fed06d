"""The archive file's formats: how a reading's resource text is carried.

Format 1 (files without a format key) holds each reading's text as a ``resource_json`` string.
Format 2 (footer metadata ``medsleep.archive_format = 2``) holds the resource's body as the hot
store keeps it (``resource_body``: the zstd frame, compressed with the store's dictionary and
naming it in its header), and a copy of every dictionary of the store, by id, in the file's
footer (``medsleep.body_dictionary.<id>``, raw bytes; not in the schema metadata, which Arrow
would store a second time): the file stays self-contained and its texts come back byte for
byte without the store. The nightly job then neither decompresses every collapsed reading's
body nor has Parquet compress its text again (measured: about an eighth of the night's CPU,
see the README).

Readers see one shape: :func:`readings_of` turns either format into rows with ``resource_json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Final

import pandas as pd
import pyarrow as pa
import zstandard

from medsleep.errors import ArchiveError
from medsleep.store.bodies import BodyReader
from medsleep.store.tables import READING, READING_COLUMNS

FORMAT_KEY: Final = b"medsleep.archive_format"
DICTIONARY_KEY: Final = b"medsleep.body_dictionary."  # + the dictionary's id
FORMAT_TEXTS: Final = 1  # resource_json strings (files written before format 2)
FORMAT_BODIES: Final = 2  # resource_body as stored, with the dictionaries
BODY_COLUMN: Final = "resource_body"
TEXT_COLUMN: Final = "resource_json"
#: The columns of an archive file as written now (format 2).
STORED_COLUMNS: Final = (*READING_COLUMNS, BODY_COLUMN, "band", "bucket_start_ms", "run_id")

Footer = Mapping[bytes, bytes]

_ADDED_TYPES: Final = {
    BODY_COLUMN: pa.large_binary(),
    TEXT_COLUMN: pa.large_string(),
    "band": pa.large_string(),
    "bucket_start_ms": pa.int64(),
    "run_id": pa.int64(),
}


@lru_cache(maxsize=8)
def archive_schema(names: Sequence[str]) -> pa.Schema:
    """The Arrow schema of an archive file of these columns (``STORED_COLUMNS``, or format 1's
    ``archive.index.ARCHIVE_COLUMNS``), with the pandas metadata a frame of them (text as
    object columns) is written with: a table built column by column in this schema is written
    byte for byte as the frame would be."""
    types = {
        c.name: pa.int64()
        if c.type.python_type is int
        else pa.float64()
        if c.type.python_type is float
        else pa.large_string()
        for c in READING.c
    }
    schema = pa.schema([(name, {**types, **_ADDED_TYPES}[name]) for name in names])
    empty = pd.DataFrame({f.name: pd.Series([], dtype=_numpy_dtype(f.type)) for f in schema})
    return pa.Table.from_pandas(empty, schema=schema, preserve_index=False).schema


def _numpy_dtype(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "int64"
    if pa.types.is_floating(arrow_type):
        return "float64"
    return "object"


#: Below this many rows a file is written in format 1 when the store has a dictionary: the
#: dictionary's copy (16 KiB) would outweigh the rows (measured: 17-18 bytes an archived row
#: in either format), and decompressing a few hundred bodies costs next to nothing.
BODIES_MIN_ROWS: Final = 1_000


def carries_bodies(rows: int, dictionaries: Mapping[int, bytes]) -> bool:
    """Whether a file of ``rows`` readings is written in format 2 (bodies as stored)."""
    return not dictionaries or rows >= BODIES_MIN_ROWS


def body_metadata(dictionaries: Mapping[int, bytes]) -> dict[bytes, bytes]:
    """The footer metadata of a format-2 file whose bodies use ``dictionaries``."""
    return {
        FORMAT_KEY: str(FORMAT_BODIES).encode(),
        **{DICTIONARY_KEY + str(i).encode(): bytes(data) for i, data in dictionaries.items()},
    }


def format_of(footer: Footer, name: str) -> int:
    """The format a file was written in; ArchiveError for one this medsleep cannot read."""
    raw = footer.get(FORMAT_KEY)
    if raw is None:
        return FORMAT_TEXTS
    try:
        version = int(raw)
    except ValueError:
        version = -1
    if version not in (FORMAT_TEXTS, FORMAT_BODIES):
        raise ArchiveError(
            f"archive file {name} is in format {raw.decode(errors='replace')}, "
            "which this medsleep cannot read (written by a newer version?)"
        )
    return version


def readings_of(table: pa.Table, footer: Footer, name: str) -> pd.DataFrame:
    """An archive file's rows (``footer``: its key-value metadata) as a frame with each
    reading's text in ``resource_json``, whatever the format; ArchiveError when a body cannot
    be turned back into its text."""
    version = format_of(footer, name)
    frame: pd.DataFrame = table.to_pandas()
    if version == FORMAT_TEXTS or BODY_COLUMN not in frame.columns:
        return frame
    reader = BodyReader(None, _dictionaries(footer, name))
    try:
        texts = body_texts(frame, reader)
    except (KeyError, zstandard.ZstdError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"archive file {name}: a body does not decompress: {exc}") from exc
    at = list(frame.columns).index(BODY_COLUMN)
    frame = frame.drop(columns=[BODY_COLUMN])
    frame.insert(at, TEXT_COLUMN, pd.Series(texts, dtype="str", index=frame.index))
    return frame


def body_texts(frame: pd.DataFrame, reader: BodyReader) -> list[str]:
    """The original text of each row's ``resource_body`` (its resource key undoes the
    elision the store made when it compressed it)."""
    return [
        reader.text(body, key)
        for body, key in zip(
            frame[BODY_COLUMN].tolist(), frame["resource_key"].tolist(), strict=True
        )
    ]


def _dictionaries(footer: Footer, name: str) -> dict[int, bytes]:
    try:
        return {
            int(key[len(DICTIONARY_KEY) :]): data
            for key, data in footer.items()
            if key.startswith(DICTIONARY_KEY)
        }
    except ValueError as exc:
        raise ArchiveError(f"archive file {name}: a body dictionary has no id") from exc
