"""An online copy of the embedded SQLite store, taken with SQLite's own backup.

``cp`` of a live store is torn when a write or checkpoint runs meanwhile, and misses the commits
still in the write-ahead log. SQLite's backup API copies the database as one snapshot, the WAL's
commits included, while readers, ingest and the nightly job go on. The copy is written to a
temporary file beside the destination, checked (``PRAGMA quick_check``: every page and index
entry readable and consistent), fsynced and only then given its name; an existing file is never
replaced. PostgreSQL stores are backed up with its own tools (``pg_dump``, pgBackRest: see
docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine

from medsleep.errors import InputError, MedsleepError
from medsleep.files import fsync_dir, publish_new, temp_file


class BackupError(MedsleepError):
    """The copy could not be taken or failed its check; nothing was left under its name."""


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    sha256: str
    pages: int

    def as_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.bytes, "sha256": self.sha256,
                "pages": self.pages}  # fmt: skip


def backup_store(engine: Engine, destination: Path) -> Backup:
    """Copy the SQLite store behind ``engine`` to ``destination`` (a new file), checked.

    Raises InputError for a PostgreSQL store or an existing destination, BackupError when the
    copy fails its check."""
    if engine.dialect.name != "sqlite":
        raise InputError(
            "medsleep backs up only its embedded SQLite store; back up PostgreSQL with pg_dump "
            "or pgBackRest (docs/deploy.md, Backups)"
        )
    destination = destination.resolve()
    if destination.exists():
        raise InputError(f"{destination} exists; a backup never replaces a file")
    handle, temp = temp_file(destination.parent, destination.name)
    handle.close()
    try:
        pages = _copy(engine, temp)
        problems = _quick_check(temp)
        if problems:
            raise BackupError(f"the copy failed its check: {'; '.join(problems[:3])}")
        digest, size = _fsynced_digest(temp)
        if not publish_new(temp, destination):  # the name appeared meanwhile
            raise InputError(f"{destination} exists; a backup never replaces a file")
        fsync_dir(destination.parent)
    finally:
        temp.unlink(missing_ok=True)
    return Backup(destination, size, digest, pages)


def _copy(engine: Engine, target_path: Path) -> int:
    with engine.connect() as conn:
        source: Any = conn.connection.driver_connection
        target = sqlite3.connect(target_path)
        try:
            # One step, one snapshot: copied in steps, the backup starts over whenever another
            # connection writes between two of them, and a busy store's copy might never end.
            # A WAL reader blocks no writer meanwhile (only a checkpoint's last pages).
            source.backup(target, pages=-1)
            # the copy as a plain file: no WAL of its own to carry around or lose
            target.execute("PRAGMA journal_mode=DELETE").fetchone()
            return int(target.execute("PRAGMA page_count").fetchone()[0])
        finally:
            target.close()


def _quick_check(path: Path) -> list[str]:
    with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as check:
        rows = [str(row[0]) for row in check.execute("PRAGMA quick_check")]
    return [] if rows == ["ok"] else rows


def _fsynced_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb+") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
        os.fsync(handle.fileno())
    return digest.hexdigest(), size
