"""Bulk inserts write every row exactly once, whatever the row count, on both backends."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import Engine, bindparam, select, text

from medsleep.store import bulk
from medsleep.store.bulk import insert_rows
from medsleep.store.tables import QUARANTINE

COLUMNS = ("batch_id", "at_ms", "source", "position", "error", "raw")


@pytest.mark.parametrize("count", [0, 1, 499, 500, 501, 1031, 2049])  # SQLite: 500 a statement
def test_every_row_lands_once_with_its_constants(engine: Engine, count: int) -> None:
    rows = [(i, i * 10, f"s{i}", f"line {i}", "it's bad", "x" * (i % 7)) for i in range(count)]
    with engine.begin() as conn:
        insert_rows(
            conn,
            "quarantine",
            COLUMNS[2:],
            [r[2:] for r in rows[: count // 2]],
            constants={"batch_id": 7, "at_ms": 123},
        )
        insert_rows(conn, "quarantine", COLUMNS, rows[count // 2 :])
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT batch_id, at_ms, source, position, error, raw FROM quarantine ORDER BY id")
        ).all()
    expected = [(7, 123, *r[2:]) for r in rows[: count // 2]] + rows[count // 2 :]
    assert [tuple(f) for f in found] == expected


@pytest.mark.parametrize("count", [165, 166, 167, 600])
def test_a_build_with_fewer_variables_gets_smaller_statements(
    sqlite_engine: Engine, count: int
) -> None:
    """SQLite before 3.32 allows 999 variables a statement: six columns go 166 rows at a time,
    and the rest in one statement of its own size."""
    rows = [(i, i * 10, f"s{i}", f"line {i}", "bad", "x") for i in range(count)]
    with sqlite_engine.begin() as conn:
        driver = conn.connection.driver_connection
        driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # type: ignore[union-attr]
        statements: list[str] = []
        driver.set_trace_callback(statements.append)  # type: ignore[union-attr]
        insert_rows(conn, "quarantine", COLUMNS, rows)
        driver.set_trace_callback(None)  # type: ignore[union-attr]
        found = conn.execute(
            text("SELECT batch_id, at_ms, source, position, error, raw FROM quarantine ORDER BY id")
        ).all()
    assert [tuple(f) for f in found] == rows
    inserts = [sql for sql in statements if sql.startswith("INSERT")]
    assert len(inserts) == count // 166 + (1 if count % 166 else 0)


def test_constants_are_literals_not_code(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_rows(
            conn,
            "quarantine",
            ("at_ms", "source", "position", "raw"),
            [(1, "s", "p", "r")],
            constants={"batch_id": 1, "error": "x'); DROP TABLE quarantine; --"},
        )
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT error FROM quarantine")).scalar()
    assert stored == "x'); DROP TABLE quarantine; --"
    with pytest.raises(TypeError), engine.begin() as conn:
        insert_rows(
            conn, "quarantine", COLUMNS[:-1], [(1, 2, "s", "p", "e")], constants={"raw": 1.5}
        )  # type: ignore[dict-item]


def test_a_template_query_is_compiled_once_and_filled_each_time(engine: Engine) -> None:
    rows = [(f"s{i}", f"line {i}", "bad", "x") for i in range(5)]
    with engine.begin() as conn:
        insert_rows(conn, "quarantine", COLUMNS[2:], rows, constants={"batch_id": 1, "at_ms": 0})
    template = (
        select(QUARANTINE.c.source)
        .where(QUARANTINE.c.source >= bindparam("low"), QUARANTINE.c.error == "bad")
        .order_by(QUARANTINE.c.source)
    )
    with engine.connect() as conn:
        first = bulk.fetch_tuples(conn, template, {"low": "s3"})
        kept = bulk._TEMPLATES[(id(template), conn.dialect.name)][1]
        second = bulk.fetch_tuples(conn, template, {"low": "s1"})
        assert bulk._TEMPLATES[(id(template), conn.dialect.name)][1] is kept
    assert first == [("s3",), ("s4",)]
    assert second == [("s1",), ("s2",), ("s3",), ("s4",)]
