"""Bulk writes that bypass per-row ORM/Core overhead: sqlite3 ``executemany`` and PostgreSQL
``COPY``. They run on the caller's connection, inside the caller's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import orjson
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

# Rows per multi-row INSERT on SQLite: measured on 154k reading rows, 64 a statement 0.31 s,
# 256 0.29 s, 1,024 0.28 s. 500: the most rows a VALUES clause may have before SQLite 3.8.8
# (SQLITE_MAX_COMPOUND_SELECT), and never more variables than the build allows (999 before
# 3.32).
_SQLITE_GROUP_ROWS = 500


def insert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constants: Mapping[str, int | str] | None = None,
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``.

    ``constants`` are columns with one value for every row, written by medsleep itself
    (batch ids, states): on SQLite they go into the statement once instead of into every row.
    """
    if not rows:
        return
    # Driver errors do not pass through SQLAlchemy here: re-raise a unique-key clash as
    # SQLAlchemy's IntegrityError, which the writers' race handling retries on.
    try:
        _insert_rows(conn, table, columns, rows, dict(constants or {}))
    except conn.dialect.loaded_dbapi.IntegrityError as exc:
        raise IntegrityError(f"INSERT INTO {table}", None, exc) from exc


def _insert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fixed: dict[str, int | str],
) -> None:
    dbapi = conn.connection.driver_connection
    names = ", ".join([*columns, *fixed])
    literals = [_literal(v) for v in fixed.values()]  # also refuses what is not a constant
    if conn.dialect.name == "postgresql":
        tail = tuple(fixed.values())
        with dbapi.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row((*row, *tail) if tail else row)
        return
    one = "(" + ", ".join(["?"] * len(columns) + literals) + ")"
    # Many rows per statement: SQLite's per-statement work (step, halt, reset) is paid once
    # per group, not once per row (measured: a third fewer instructions per row).
    limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
    per_statement = max(1, min(_SQLITE_GROUP_ROWS, limit // max(1, len(columns))))
    grouped = len(rows) - len(rows) % per_statement
    flat = chain.from_iterable

    def of_rows(n: int) -> str:
        return f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * n)}"

    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        if grouped:
            cursor.executemany(
                of_rows(per_statement),
                (
                    tuple(flat(rows[i : i + per_statement]))
                    for i in range(0, grouped, per_statement)
                ),
            )
        if grouped < len(rows):  # the rest in one statement of its own size
            rest = rows[grouped:]
            cursor.execute(of_rows(len(rest)), tuple(flat(rest)))
    finally:
        cursor.close()


def _literal(value: int | str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"not a SQL constant: {value!r}")


IN_CHUNK = 20_000  # values per statement of execute_in


def update_ids(
    conn: Connection, table: str, ids: Sequence[int], set_sql: str, where_sql: str = "1=1"
) -> int:
    """``UPDATE table SET set_sql WHERE id IN ids AND where_sql``; returns rows changed.

    ``set_sql``/``where_sql`` are trusted SQL fragments written by medsleep, never user input.
    """
    return _by_ids(conn, f"UPDATE {table} SET {set_sql}", ids, where_sql)


def delete_ids(conn: Connection, table: str, ids: Sequence[int], where_sql: str = "1=1") -> int:
    """``DELETE FROM table WHERE id IN ids AND where_sql``; returns rows deleted."""
    return _by_ids(conn, f"DELETE FROM {table}", ids, where_sql)


def _by_ids(conn: Connection, head: str, ids: Sequence[int], where_sql: str) -> int:
    changed, _ = execute_in(
        conn, f"{head} WHERE {{match}} AND {where_sql}", "id", [int(i) for i in ids]
    )
    return changed


def execute_in(
    conn: Connection, sql: str, column: str, values: Sequence[Any], *, fetch: bool = False
) -> tuple[int, list[tuple[Any, ...]]]:
    """Run ``sql`` with ``{match}`` standing for ``column IN values``, one statement per
    20,000 values (an array parameter on PostgreSQL, a JSON array on SQLite); returns the
    rows changed and, with ``fetch``, the rows it gives back. ``sql`` is a trusted fragment
    written by medsleep, never user input."""
    dbapi = conn.connection.driver_connection
    postgres = conn.dialect.name == "postgresql"
    match = f"{column} = ANY(%s)" if postgres else f"{column} IN (SELECT value FROM json_each(?))"
    statement = sql.replace("{match}", match)
    changed = 0
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(values), IN_CHUNK):
        part = list(values[start : start + IN_CHUNK])
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(statement, (part if postgres else orjson.dumps(part).decode(),))
            changed += max(cursor.rowcount, 0)
            if fetch:
                rows.extend(cursor.fetchall())
        finally:
            cursor.close()
    return changed, rows


def fetch_tuples(
    conn: Connection, query: Any, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run a Core query and return plain tuples from the driver, skipping Row objects.

    ``params`` fill the query's named ``bindparam`` placeholders: such a query is a template,
    compiled once per dialect and kept (compiling a select costs ~2 ms; SQLAlchemy's own cache
    is skipped with its Row objects).
    """
    if params is None:
        compiled = _compile(conn, query)
        values = dict(compiled.params)
    else:
        key = (id(query), conn.dialect.name)
        kept = _TEMPLATES.get(key)
        if kept is None or kept[0] is not query:
            kept = _TEMPLATES[key] = (query, _compile(conn, query))
        compiled = kept[1]
        values = {**compiled.params, **params}
    positional = compiled.positiontup
    dbapi = conn.connection.driver_connection
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        if positional is not None:
            cursor.execute(str(compiled), tuple(values[name] for name in positional))
        else:
            cursor.execute(str(compiled), values)
        return list(cursor.fetchall())
    finally:
        cursor.close()


_TEMPLATES: dict[tuple[int, str], tuple[Any, Any]] = {}


def _compile(conn: Connection, query: Any) -> Any:
    return query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})


def select_in(
    conn: Connection, table: str, columns: Sequence[str], key: str, values: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """``SELECT columns FROM table WHERE key IN values`` as plain tuples, one statement per
    20,000 values (a JSON array on SQLite, an array parameter on PostgreSQL)."""
    names = ", ".join(columns)
    _, rows = execute_in(
        conn, f"SELECT {names} FROM {table} WHERE {{match}}", key, values, fetch=True
    )
    return rows


def scalar_int(conn: Connection, query: Any) -> int:
    """The one integer a query returns (a count, a max)."""
    return int(conn.execute(query).scalar_one())
