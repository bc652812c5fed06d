"""The single consolidation lock.

PostgreSQL: a session advisory lock held on a dedicated connection. SQLite: an exclusive
``flock`` on a file beside the database. Both vanish with the process that held them, so a
job killed with SIGKILL never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from medsleep.errors import LockHeldError

# An arbitrary constant: "medsleep" in ASCII, as the advisory lock key.
ADVISORY_KEY = 0x6D656473_6C656570 & 0x7FFFFFFFFFFFFFFF


def _sqlite_lock_path(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.consolidate.lock")


@contextmanager
def consolidation_lock(engine: Engine) -> Iterator[None]:
    """Hold the consolidation lock for the duration of the block, or raise LockHeldError."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            if not got.scalar():
                raise LockHeldError("another consolidation is running (PostgreSQL advisory lock)")
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                conn.commit()
        return
    path = _sqlite_lock_path(engine)
    if path is None:
        yield  # a private in-memory database: nobody else can see it
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LockHeldError(f"another consolidation is running (lock file {path})") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock
