"""What the store holds and what it costs: readings per state, bytes per table, the archive
per month — so that an operator sees what a night saved (``medsleep db stats``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from medsleep.store.space import auto_vacuum_mode, free_pages, store_bytes
from medsleep.store.tables import ARCHIVE_FILE, READING

_reading = READING
_archive = ARCHIVE_FILE


@dataclass(frozen=True)
class TableSpace:
    """One table with its indexes: rows and the bytes of their pages."""

    table: str
    rows: int
    bytes: int | None  # None where the database cannot say (SQLite built without dbstat)


@dataclass(frozen=True)
class ArchiveMonth:
    """The archive files of one month (``YYYY/MM``) in one state."""

    month: str
    state: str
    files: int
    rows: int
    bytes: int


@dataclass(frozen=True)
class StoreStats:
    store_bytes: int
    free_bytes: int  # SQLite pages on the free list: reused by the next writes
    auto_vacuum: str  # incremental, full, none; "n/a" on PostgreSQL
    readings_by_state: dict[str, int]
    tables: list[TableSpace]
    archive: list[ArchiveMonth]

    @property
    def hot_readings(self) -> int:
        return sum(self.readings_by_state.values())

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "hot_readings": self.hot_readings}


_AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental", None: "n/a"}


def store_stats(engine: Engine) -> StoreStats:
    """Counts and sizes of the store and its archive (reads every page's header on SQLite:
    seconds on a gigabyte store)."""
    size = store_bytes(engine)
    free = free_pages(engine)
    with engine.connect() as conn:
        page = _page_size(conn)
        by_state = {
            str(state): int(n)
            for state, n in conn.execute(
                select(_reading.c.state, func.count()).group_by(_reading.c.state)
            )
        }
        tables = _tables(conn)
        month = func.substr(_archive.c.name, 1, 7)
        archive = [
            ArchiveMonth(str(m), str(state), int(files), int(rows or 0), int(nbytes or 0))
            for m, state, files, rows, nbytes in conn.execute(
                select(
                    month,
                    _archive.c.state,
                    func.count(),
                    func.sum(_archive.c.rows),
                    func.sum(_archive.c.bytes),
                )
                .group_by(month, _archive.c.state)
                .order_by(month, _archive.c.state)
            )
        ]
    return StoreStats(
        size,
        free * page,
        _AUTO_VACUUM.get(auto_vacuum_mode(engine), "unknown"),
        dict(sorted(by_state.items())),
        tables,
        archive,
    )


def _page_size(conn: Connection) -> int:
    if conn.dialect.name != "sqlite":
        return 0
    return int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())


def _table_names(conn: Connection) -> list[str]:
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return sorted(str(name) for (name,) in conn.exec_driver_sql(query))


def _tables(conn: Connection) -> list[TableSpace]:
    names = _table_names(conn)
    sizes = _sqlite_sizes(conn) if conn.dialect.name == "sqlite" else _postgres_sizes(conn, names)
    out = []
    for name in names:
        rows = int(conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar_one())
        out.append(TableSpace(name, rows, sizes.get(name) if sizes is not None else None))
    return sorted(out, key=lambda t: (-(t.bytes or 0), t.table))


def _sqlite_sizes(conn: Connection) -> dict[str, int] | None:
    """Bytes per table, its indexes counted with it, from the dbstat virtual table."""
    owner = {
        str(name): str(table)
        for name, table in conn.exec_driver_sql("SELECT name, tbl_name FROM sqlite_schema")
    }
    try:
        pages = conn.execute(text("SELECT name, pgsize FROM dbstat WHERE aggregate = TRUE")).all()
    except OperationalError as exc:  # dbstat is a compile-time option of SQLite
        if "dbstat" not in str(exc):
            raise
        return None
    sizes: dict[str, int] = {}
    for name, nbytes in pages:
        table = owner.get(str(name), str(name))
        sizes[table] = sizes.get(table, 0) + int(nbytes)
    return sizes


def _postgres_sizes(conn: Connection, names: list[str]) -> dict[str, int]:
    return {
        name: int(conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": name}).scalar_one())
        for name in names
    }
