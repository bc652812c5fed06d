"""How much disk the store takes, table by table, and giving freed pages back after a night.

SQLite never shrinks a file by itself: pages freed by deleting archived readings go on its
free list and stay part of the file. A store created with ``auto_vacuum=INCREMENTAL`` (what
``engine`` sets on every new SQLite store) can hand them back with ``PRAGMA
incremental_vacuum``: it moves the live pages at the end of the file into freed slots (its
pointer map says who points to them) and truncates, touching only what it moves rather than
rewriting the whole file as ``VACUUM`` does; a store created before that
needs one ``VACUUM`` (``medsleep db vacuum``) to switch over. Until then the freed pages are
reused by the next ingest, so the file stops growing instead of shrinking.

PostgreSQL's autovacuum marks dead tuples reusable on its own; returning space to the
operating system needs ``VACUUM FULL`` (see docs/deploy.md), which medsleep never runs itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from medsleep.store.archived_versions import compact_released

log = logging.getLogger(__name__)

INCREMENTAL = 2  # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental


@dataclass(frozen=True)
class SpaceReturned:
    """What ``return_space`` did: the store's bytes before and after, and how it got there."""

    bytes_before: int
    bytes_after: int
    pages_freed: int  # free pages found before returning them
    returned: bool  # False: the store cannot shrink (old SQLite store, or PostgreSQL)


def _driver(conn: Any) -> Any:
    return conn.connection.driver_connection


def _pragma_int(driver: Any, name: str) -> int:
    return int(driver.execute(f"PRAGMA {name}").fetchone()[0])


def store_bytes(engine: Engine) -> int:
    """The bytes the store's tables and indexes take (SQLite: the database file as its
    pages say, free pages included; PostgreSQL: the database's size)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            driver = _driver(conn)
            return _pragma_int(driver, "page_count") * _pragma_int(driver, "page_size")
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def free_pages(engine: Engine) -> int:
    """Pages SQLite holds on its free list (0 on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return 0
    with engine.connect() as conn:
        return _pragma_int(_driver(conn), "freelist_count")


def auto_vacuum_mode(engine: Engine) -> int | None:
    """SQLite's ``auto_vacuum`` setting of the store (None on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        return _pragma_int(_driver(conn), "auto_vacuum")


def return_space(engine: Engine) -> SpaceReturned:
    """After a night: move the versions whose readings it archived to their 16-byte key
    digests (store.archived_versions), then give the free pages of a SQLite store back to the
    file system (incremental auto-vacuum, then a WAL checkpoint so the file itself is cut).
    Runs outside any transaction."""
    before = store_bytes(engine)
    with engine.begin() as conn:  # one transaction: each page of the digests written once
        moved = compact_released(conn)
    log.info("%d archived versions moved to their key digests", moved)
    if engine.dialect.name != "sqlite":
        return SpaceReturned(before, before, 0, False)
    with engine.connect() as conn:
        driver = _driver(conn)
        freed = _pragma_int(driver, "freelist_count")
        returned = _pragma_int(driver, "auto_vacuum") == INCREMENTAL
        if returned and freed:
            # executescript steps the pragma to its end; execute() would free one page only
            driver.executescript("PRAGMA incremental_vacuum;")
            busy, _, _ = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:  # a reader holds the WAL: the file is cut at a later checkpoint
                log.info("checkpoint after incremental vacuum deferred by a reader")
    after = store_bytes(engine)
    log.info("store %d -> %d bytes (%d free pages, returned=%s)", before, after, freed, returned)
    return SpaceReturned(before, after, freed, returned)


def vacuum(engine: Engine) -> SpaceReturned:
    """Rewrite a SQLite store whole (``VACUUM``), switching it to incremental auto-vacuum.

    Needs free disk about the store's size and the store to itself while it runs."""
    before = store_bytes(engine)
    if engine.dialect.name != "sqlite":
        return SpaceReturned(before, before, 0, False)
    with engine.connect() as conn:
        driver = _driver(conn)
        freed = _pragma_int(driver, "freelist_count")
        driver.execute(f"PRAGMA auto_vacuum={INCREMENTAL}")
        driver.execute("VACUUM")
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return SpaceReturned(before, store_bytes(engine), freed, True)
