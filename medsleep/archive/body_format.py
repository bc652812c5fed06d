"""The archive file's formats: how a reading's resource text is carried.

Format 1 (files without a format key) holds each reading's text as a ``resource_json`` string.
Format 2 (schema metadata ``medsleep.archive_format = 2``) holds the resource's body as the hot
store keeps it (``resource_body``: the zstd frame, compressed with the store's dictionary and
naming it in its header), and a copy of every dictionary its bodies name, by id, in the file's
own metadata: the file stays self-contained and its texts come back byte for byte without the
store. The nightly job then neither decompresses every collapsed reading's body nor compresses
its text again in Parquet (measured: a fifth of the night's CPU, see the README).

Readers see one shape: :func:`readings_of` turns either format into rows with ``resource_json``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

import orjson
import pandas as pd
import pyarrow as pa
import zstandard

from medsleep.errors import ArchiveError
from medsleep.store.bodies import BodyReader
from medsleep.store.tables import READING_COLUMNS

FORMAT_KEY: Final = b"medsleep.archive_format"
DICTIONARIES_KEY: Final = b"medsleep.body_dictionaries"
FORMAT_TEXTS: Final = 1  # resource_json strings (files written before format 2)
FORMAT_BODIES: Final = 2  # resource_body as stored, with the dictionaries
BODY_COLUMN: Final = "resource_body"
TEXT_COLUMN: Final = "resource_json"
#: The columns of an archive file as written now (format 2).
STORED_COLUMNS: Final = (*READING_COLUMNS, BODY_COLUMN, "band", "bucket_start_ms", "run_id")


def body_metadata(dictionaries: Mapping[int, bytes]) -> dict[bytes, bytes]:
    """The schema metadata of a format-2 file whose bodies use ``dictionaries``."""
    table = {str(i): base64.b64encode(data).decode() for i, data in sorted(dictionaries.items())}
    return {FORMAT_KEY: str(FORMAT_BODIES).encode(), DICTIONARIES_KEY: orjson.dumps(table)}


def format_of(schema: pa.Schema, name: str) -> int:
    """The format a file was written in; ArchiveError for one this medsleep cannot read."""
    metadata = schema.metadata or {}
    raw = metadata.get(FORMAT_KEY)
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


def readings_of(table: pa.Table, name: str) -> pd.DataFrame:
    """An archive file's rows as a frame with each reading's text in ``resource_json``,
    whatever the format; ArchiveError when a body cannot be turned back into its text."""
    version = format_of(table.schema, name)
    frame: pd.DataFrame = table.to_pandas()
    if version == FORMAT_TEXTS or BODY_COLUMN not in frame.columns:
        return frame
    reader = BodyReader(None, _dictionaries(table.schema, name))
    try:
        texts = [
            reader.text(body, key)
            for body, key in zip(
                frame[BODY_COLUMN].tolist(), frame["resource_key"].tolist(), strict=True
            )
        ]
    except (KeyError, zstandard.ZstdError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"archive file {name}: a body does not decompress: {exc}") from exc
    at = list(frame.columns).index(BODY_COLUMN)
    frame = frame.drop(columns=[BODY_COLUMN])
    frame.insert(at, TEXT_COLUMN, pd.Series(texts, dtype="str", index=frame.index))
    return frame


def _dictionaries(schema: pa.Schema, name: str) -> dict[int, bytes]:
    raw = (schema.metadata or {}).get(DICTIONARIES_KEY, b"{}")
    try:
        table = orjson.loads(raw)
        return {int(i): base64.b64decode(data, validate=True) for i, data in table.items()}
    except (orjson.JSONDecodeError, ValueError, AttributeError) as exc:
        raise ArchiveError(f"archive file {name}: its body dictionaries are unreadable") from exc
