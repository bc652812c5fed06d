"""Bulk writers hand SQLite's WAL checkpoints to a background thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text

from medsleep.store.checkpoint import DEFAULT_AUTOCHECKPOINT, background_checkpoints


def _autocheckpoint(conn: object) -> int:
    driver = conn.connection.driver_connection  # type: ignore[attr-defined]
    return int(driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def _write(conn: object, rows: int) -> None:
    with conn.begin():  # type: ignore[attr-defined]
        conn.execute(  # type: ignore[attr-defined]
            text(
                "INSERT INTO quarantine (batch_id, at_ms, source, position, error, raw) "
                "VALUES (0, 0, 's', 'p', 'e', :raw)"
            ),
            [{"raw": "x" * 2000} for _ in range(rows)],
        )


def test_the_thread_checkpoints_while_the_writer_keeps_its_connection(
    sqlite_engine: Engine,
) -> None:
    database = Path(sqlite_engine.url.database or "")
    with sqlite_engine.connect() as conn:
        before = database.stat().st_size
        with background_checkpoints(sqlite_engine, conn) as checkpoints:
            assert _autocheckpoint(conn) == 0  # the writer never stops to checkpoint
            for _ in range(3):
                _write(conn, 2000)
                checkpoints.poke()
            deadline = time.monotonic() + 10
            while checkpoints.checkpoints == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert checkpoints.checkpoints >= 1
            # The rows reached the database file while the writer's connection is still open.
            assert database.stat().st_size > before + 2000 * 2000
        assert _autocheckpoint(conn) == DEFAULT_AUTOCHECKPOINT


def test_writes_land_and_only_sqlite_gets_a_thread(engine: Engine) -> None:
    with engine.connect() as conn, background_checkpoints(engine, conn) as checkpoints:
        _write(conn, 10)
        checkpoints.poke()
        threads = {t.name for t in threading.enumerate()}
        assert ("medsleep-checkpoint" in threads) == (engine.dialect.name == "sqlite")
    assert "medsleep-checkpoint" not in {t.name for t in threading.enumerate()}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM quarantine")).scalar() == 10
