"""Checkpoint SQLite's write-ahead log from a background thread during bulk writes.

A checkpoint copies the WAL into the database file and fsyncs it. Done by the writing
connection (SQLite's default), the writer stops and waits for the disk each time. During a
bulk ingest a thread with its own connection does it instead: the writer goes on appending
while the thread copies and waits (SQLite releases the GIL for the whole checkpoint). This
is the pattern SQLite's WAL documentation suggests for write-heavy applications. Nothing
changes for durability: every commit still reaches the WAL as before.

PostgreSQL checkpoints on its own: there this is a no-op.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)
DEFAULT_AUTOCHECKPOINT = 4000  # pages; what engine.py sets on every connection


class Checkpointer:
    """Runs a passive checkpoint after each ``poke`` (pokes that arrive while one runs
    coalesce, so it keeps pace with the writer without queueing)."""

    def __init__(self, engine: Engine | None) -> None:
        self._engine = engine
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def poke(self) -> None:
        if self._thread is not None:
            self._wake.set()

    def start(self) -> None:
        if self._engine is None:
            return
        self._thread = threading.Thread(target=self._run, name="medsleep-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        assert self._engine is not None
        try:
            raw: Any = self._engine.raw_connection()
        except Exception:  # best effort: the writer's own close still checkpoints
            log.exception("background checkpoints unavailable")
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except Exception:
                    log.warning("background checkpoint failed; the next one retries", exc_info=True)
        finally:
            raw.close()


@contextmanager
def background_checkpoints(engine: Engine, conn: Connection) -> Iterator[Checkpointer]:
    """While the block runs, ``conn`` (the bulk writer) never checkpoints itself; call
    ``poke()`` after each commit and a background thread checkpoints instead."""
    if engine.dialect.name != "sqlite":
        yield Checkpointer(None)
        return
    driver: Any = conn.connection.driver_connection
    driver.execute("PRAGMA wal_autocheckpoint=0")
    checkpointer = Checkpointer(engine)
    checkpointer.start()
    try:
        yield checkpointer
    finally:
        checkpointer.stop()
        driver.execute(f"PRAGMA wal_autocheckpoint={DEFAULT_AUTOCHECKPOINT}")
