"""The cold archive: collapsed raw readings as checksummed Parquet files.

An archive is a directory (the *root*) of Parquet files (zstd, page checksums on). The database
records each file by its *name* — a relative POSIX path such as ``2026/11/run-42-0.parquet`` —
plus its sha256 and row count; the root is configuration and is passed in separately, so an
archive can move without rewriting the database.

Writes are crash-safe and never destructive: the file is written to a hidden temporary file in
the target directory, fsynced, published with a no-replace hard link (an existing file is never
overwritten), the directory is fsynced, and the published file is read back — checksum from
disk, row count and ``id`` column — before :func:`write_archive_file` returns. Writing the same
name again with identical bytes is a no-op; with different bytes it is an :class:`ArchiveError`.
A crash leaves at most a hidden ``.<name>.<random>.tmp`` file, which :func:`iter_archive_files`
ignores and :func:`iter_temp_files` reports. Files are created owner-only (mode 0600, as
``tempfile.mkstemp`` makes them): they hold PHI.

Round trip: every column comes back with its values and dtype (numpy and nullable ints, floats,
bools, datetimes). String columns — ``str`` or ``object`` of str — are stored as Arrow
``large_string`` and come back as pandas' default ``str`` dtype (missing values as NaN); the
text is byte-identical. The frame's index is not stored.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from medsleep.archive.body_format import readings_of
from medsleep.errors import ArchiveError
from medsleep.files import TEMP_SUFFIX, fsync_dir, make_dirs, publish_new, temp_file
from medsleep.store.tables import READING_ADDED_COLUMNS

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIX: Final = ".parquet"
COMPRESSION: Final = "zstd"

#: pyarrow row filters, e.g. ``[("patient", "==", "p1")]`` or a list of such lists (OR of ANDs).
Filters = Sequence[tuple[str, str, Any]] | Sequence[Sequence[tuple[str, str, Any]]]


@dataclass(frozen=True)
class ArchiveFile:
    """One published archive file: what the database records about it."""

    name: str
    sha256: str
    rows: int
    bytes: int

    def path(self, root: Path) -> Path:
        """Where the file lives under the archive ``root``."""
        return _resolve(root, self.name)


def archive_file_name(run_id: int, shard: int, when: datetime) -> str:
    """The conventional name ``YYYY/MM/run-<run_id>-<shard>.parquet`` for a run's shard.

    >>> archive_file_name(42, 3, datetime(2026, 11, 25))
    '2026/11/run-42-3.parquet'
    """
    return f"{when:%Y/%m}/run-{run_id}-{shard}{ARCHIVE_SUFFIX}"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_archive_file(
    root: Path,
    name: str,
    table: pd.DataFrame | pa.Table,
    *,
    id_column: str = "id",
    metadata: Mapping[bytes, bytes] | None = None,
) -> ArchiveFile:
    """Write ``table`` (a frame, or an Arrow table written as it is) to ``root / name``
    durably and verify it; return what to record.

    ``metadata`` goes into the file's schema metadata (the archive format and what it needs to
    be read alone, see ``archive.body_format``). Parent directories are created. Raises
    ArchiveError when the name is not a safe relative ``.parquet`` path, a column cannot be
    archived, the name already holds different bytes, or the file read back from disk differs
    from what was meant (checksum, rows, ``id_column``).
    """
    path = _resolve(root, name)
    arrow_table = table if isinstance(table, pa.Table) else _to_arrow(table, name)
    _make_directories(path.parent)

    try:
        handle, temp = temp_file(path.parent, path.name)
    except OSError as exc:
        raise ArchiveError(f"cannot write archive file {name}: {exc}") from exc
    try:
        with handle:
            sink = _HashingSink(handle)
            _write_parquet(arrow_table, sink, metadata)
            handle.flush()
            os.fsync(handle.fileno())
        digest = sink.hexdigest()
        created = publish_new(temp, path)
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"cannot write archive file {name}: {exc}") from exc
    finally:
        temp.unlink(missing_ok=True)

    if not created:
        existing = _sha256_or_raise(path, name)
        if existing != digest:
            raise ArchiveError(
                f"archive file {name} already exists with different content "
                f"(sha256 {existing}, new {digest}); refusing to overwrite"
            )
        logger.info("archive file %s already present with the same checksum", name)
    _fsync_directory(path.parent)

    try:
        _check_written(path, name, digest, arrow_table, id_column)
    except ArchiveError:
        if created:
            # Nothing references a file that failed its read-back yet; leave no trap for a retry.
            path.unlink(missing_ok=True)
            _fsync_directory(path.parent)
        raise
    size = path.stat().st_size
    rows = arrow_table.num_rows
    logger.info("archived %d rows to %s (%d bytes)", rows, name, size)
    return ArchiveFile(name=name, sha256=digest, rows=rows, bytes=size)


def _write_parquet(
    arrow_table: pa.Table, sink: _HashingSink, metadata: Mapping[bytes, bytes] | None
) -> None:
    """The Parquet bytes of ``arrow_table``; ``metadata`` goes into the footer's key-value
    metadata only (schema metadata would be stored twice: Arrow copies it into its own
    serialised schema). Binary columns hold compressed, unique values: no dictionary pages."""
    plain = [f.name for f in arrow_table.schema if not pa.types.is_large_binary(f.type)]
    with pq.ParquetWriter(
        sink,
        arrow_table.schema,
        compression=COMPRESSION,
        write_page_checksum=True,
        use_dictionary=plain,
    ) as writer:
        writer.write_table(arrow_table)
        if metadata:
            writer.add_key_value_metadata(dict(metadata))


def footer_metadata(root: Path, name: str) -> dict[bytes, bytes]:
    """The key-value metadata of an archive file's footer (what ``metadata`` wrote)."""
    path = _existing(root, name)
    try:
        return dict(pq.ParquetFile(path).metadata.metadata or {})
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive file {name} is unreadable: {exc}") from exc


def verify_archive_file(root: Path, name: str, sha256: str, *, rows: int | None = None) -> None:
    """Check that ``root / name`` exists, has checksum ``sha256`` and parses as Parquet.

    When ``rows`` is given the Parquet footer must report that many rows. Raises ArchiveError
    saying which: missing, checksum mismatch, unreadable or wrong row count.
    """
    path = _existing(root, name)
    digest = _sha256_or_raise(path, name)
    if digest != sha256.lower():
        raise ArchiveError(
            f"archive file {name} fails its checksum: expected sha256 {sha256}, found {digest}"
        )
    try:
        found = pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive file {name} is unreadable: {exc}") from exc
    if rows is not None and found != rows:
        raise ArchiveError(f"archive file {name} holds {found} rows, expected {rows}")


def read_archive_file(
    root: Path,
    name: str,
    sha256: str | None = None,
    *,
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
) -> pd.DataFrame:
    """Read an archive file back into a DataFrame (optionally only some columns or rows).

    With ``sha256`` the bytes are checked before parsing — the same bytes, read once, so the
    file cannot change between check and read. Raises ArchiveError when the file is missing,
    fails its checksum or cannot be parsed.
    """
    source = _checked_source(root, name, sha256)
    try:
        arrow_table = pq.read_table(
            source,
            columns=None if columns is None else list(columns),
            filters=filters,
            page_checksum_verification=True,
        )
        frame: pd.DataFrame = arrow_table.to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive file {name} is unreadable: {exc}") from exc
    return frame


def _checked_source(root: Path, name: str, sha256: str | None) -> pa.BufferReader | Path:
    """The file to parse: its bytes, read once and checked against ``sha256`` when given."""
    path = _existing(root, name)
    source: pa.BufferReader | Path = path
    if sha256 is not None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArchiveError(f"archive file {name} is unreadable: {exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256.lower():
            raise ArchiveError(
                f"archive file {name} fails its checksum: expected sha256 {sha256}, found {digest}"
            )
        source = pa.BufferReader(data)
    return source


def read_archived_readings(root: Path, name: str, sha256: str | None) -> pd.DataFrame:
    """An archive file of readings (checked against ``sha256``), in either format, with each
    reading's text as ``resource_json`` and the reading columns added since it was written
    filled in with the value its readings had then."""
    source = _checked_source(root, name, sha256)
    try:
        parquet = pq.ParquetFile(source, page_checksum_verification=True)
        frame = readings_of(parquet.read(), dict(parquet.metadata.metadata or {}), name)
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive file {name} is unreadable: {exc}") from exc
    for column, default in READING_ADDED_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = default
    return frame


def iter_archive_files(root: Path) -> Iterator[str]:
    """Names (relative POSIX paths, sorted) of the published archive files under ``root``.

    Temporary files of interrupted writes are skipped; a missing root holds no files.
    """
    for path in sorted(root.rglob(f"*{ARCHIVE_SUFFIX}")):
        if path.is_file() and not path.name.startswith("."):
            yield path.relative_to(root).as_posix()


def iter_temp_files(root: Path) -> Iterator[str]:
    """Names of leftover temporary files of interrupted writes (safe to delete when no write
    is running)."""
    for path in sorted(root.rglob(f".*{TEMP_SUFFIX}")):
        if path.is_file():
            yield path.relative_to(root).as_posix()


class _HashingSink:
    """A write-only file object that hashes what pyarrow writes on its way to the disk."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._hash = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        # The caller owns the handle: it still has to fsync it.
        self.closed = True

    def writable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _resolve(root: Path, name: str) -> Path:
    """``root / name`` for a safe name: relative POSIX path, no ``..``, ends in ``.parquet``."""
    pure = PurePosixPath(name)
    parts = pure.parts
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in parts)
        or pure.as_posix() != name
        or pure.suffix != ARCHIVE_SUFFIX
        or pure.name.startswith(".")
    ):
        raise ArchiveError(
            f"archive file name {name!r} must be a relative POSIX path ending in "
            f"{ARCHIVE_SUFFIX}, without '..' or hidden file names"
        )
    return root.joinpath(*parts)


def _existing(root: Path, name: str) -> Path:
    path = _resolve(root, name)
    if not path.is_file():
        raise ArchiveError(f"archive file {name} is missing from {root}")
    return path


def _sha256_or_raise(path: Path, name: str) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise ArchiveError(f"archive file {name} is unreadable: {exc}") from exc


def _to_arrow(table: pd.DataFrame, name: str) -> pa.Table:
    if not all(isinstance(column, str) for column in table.columns):
        raise ArchiveError(f"archive file {name}: column names must be strings")
    if not table.columns.is_unique:
        raise ArchiveError(f"archive file {name}: column names repeat")
    schema = pa.schema([(column, _arrow_type(table[column], name)) for column in table.columns])
    try:
        # one thread: the columns are a patient's few thousand rows, and handing them to a
        # pool cost more than converting them (measured: 6.4 against 3.1 ms CPU a patient-day)
        return pa.Table.from_pandas(table, schema=schema, preserve_index=False, nthreads=1)
    except pa.ArrowException as exc:
        raise ArchiveError(f"archive file {name}: cannot convert frame: {exc}") from exc


def _arrow_type(column: pd.Series, name: str) -> pa.DataType:
    """The Arrow type that stores ``column`` without loss; str columns as large_string."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        # numpy numbers map one to one (measured: inferring them through a one-column frame
        # was a third of writing a patient-day's file)
        return pa.from_numpy_dtype(dtype)
    if isinstance(dtype, pd.StringDtype):
        return pa.large_string()
    if pd.api.types.is_object_dtype(dtype):
        kind = pd.api.types.infer_dtype(column, skipna=True)
        if kind in ("string", "empty"):
            return pa.large_string()
        if kind == "bytes":
            return pa.large_binary()
        raise ArchiveError(
            f"archive file {name}: column {column.name!r} holds {kind} objects; "
            "only str or bytes object columns can be archived"
        )
    try:
        inferred = pa.Schema.from_pandas(column.to_frame(), preserve_index=False).field(0).type
    except pa.ArrowException as exc:
        raise ArchiveError(
            f"archive file {name}: column {column.name!r} of dtype {dtype} cannot be archived"
        ) from exc
    if pa.types.is_string(inferred):
        return pa.large_string()
    return inferred


def _check_written(path: Path, name: str, digest: str, table: pa.Table, id_column: str) -> None:
    on_disk = _sha256_or_raise(path, name)
    if on_disk != digest:
        raise ArchiveError(f"archive file {name} reads back with sha256 {on_disk}, wrote {digest}")
    has_ids = id_column in table.column_names
    try:
        parquet = pq.ParquetFile(path, page_checksum_verification=True)
        rows = parquet.metadata.num_rows
        ids = parquet.read(columns=[id_column]).column(id_column) if has_ids else None
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive file {name} is unreadable after writing: {exc}") from exc
    if rows != table.num_rows:
        raise ArchiveError(f"archive file {name} reads back {rows} rows, wrote {table.num_rows}")
    if ids is not None and not ids.equals(table.column(id_column)):
        raise ArchiveError(f"archive file {name} reads back different {id_column!r} values")


def _make_directories(directory: Path) -> None:
    try:
        make_dirs(directory)
    except OSError as exc:
        raise ArchiveError(f"cannot create archive directory {directory}: {exc}") from exc


def _fsync_directory(directory: Path) -> None:
    try:
        fsync_dir(directory)
    except OSError as exc:
        raise ArchiveError(f"cannot sync archive directory {directory}: {exc}") from exc
