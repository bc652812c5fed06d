"""Bulk inserts write every row exactly once, whatever the row count, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, bindparam, select, text

from medsleep.store import bulk
from medsleep.store.bulk import insert_rows
from medsleep.store.tables import QUARANTINE

COLUMNS = ("batch_id", "at_ms", "source", "position", "error", "raw")


@pytest.mark.parametrize("count", [0, 1, 149, 150, 151, 1007])
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
