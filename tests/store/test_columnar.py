"""Columns of a query: through ADBC on a SQLite file, from the rows anywhere else, the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Engine, LargeBinary, MetaData, Table, Text, create_engine, select
from sqlalchemy import Float as SAFloat
from sqlalchemy import Integer as SAInteger

from medsleep.store import columnar
from medsleep.store.columnar import fetch_columns

_meta = MetaData()
_t = Table(
    "t",
    _meta,
    Column("i", SAInteger, primary_key=True),
    Column("x", SAFloat),
    Column("s", Text),
    Column("b", LargeBinary),
    Column("n", SAInteger),
)
_NAMES = ["i", "x", "s", "b", "n"]
_row = st.fixed_dictionaries(
    {
        "x": st.floats(allow_nan=False, allow_infinity=False, width=64),
        "s": st.one_of(st.none(), st.sampled_from(["a", "bb", "é", ""]), st.text(max_size=5)),
        "b": st.one_of(st.none(), st.binary(max_size=8)),
        "n": st.one_of(st.none(), st.integers(-(2**62), 2**62)),
    }
)


def _engine(url: str, rows: list[dict[str, Any]]) -> Engine:
    engine = create_engine(url)
    _meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(_t.delete())
        if rows:
            conn.execute(_t.insert(), [{"i": k, **row} for k, row in enumerate(rows)])
    return engine


def _plain(columns: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    return {name: column.tolist() for name, column in columns.items()}


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(_row, max_size=30), floor=st.integers(-1, 31))
def test_adbc_columns_equal_the_rows_columns(tmp_path_factory: Any, rows: Any, floor: int) -> None:
    path = tmp_path_factory.getbasetemp() / "columnar.db"  # one file, emptied each example
    engine = _engine(f"sqlite:///{path}", rows)
    query = select(_t).where(_t.c.i >= floor).order_by(_t.c.i)
    with engine.connect() as conn:
        through_adbc = fetch_columns(conn, query, _NAMES)
        from_rows = {
            name: np.array([row[i] for row in conn.execute(query)], dtype=object)
            for i, name in enumerate(_NAMES)
        }
    engine.dispose()
    assert _plain(through_adbc) == _plain(from_rows)
    if rows[max(floor, 0) :]:
        assert through_adbc["i"].dtype == np.int64  # numbers stay numpy numbers
    assert all(through_adbc[name].dtype == object for name in ("s", "b"))


def test_a_sqlite_file_is_read_through_adbc(tmp_path: Path, monkeypatch: Any) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 't.db'}", [{"x": 1.5, "s": "a", "b": b"z", "n": 3}])

    def no_rows(*_: Any) -> None:
        raise AssertionError("read row by row")

    monkeypatch.setattr(columnar, "fetch_tuples", no_rows)
    with engine.connect() as conn:
        found = fetch_columns(conn, select(_t), _NAMES)
    assert _plain(found) == {"i": [0], "x": [1.5], "s": ["a"], "b": [b"z"], "n": [3]}


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_store_is_read_row_by_row(url: str) -> None:
    engine = _engine(url, [{"x": 2.0, "s": None, "b": None, "n": None}])
    with engine.connect() as conn:
        found = fetch_columns(conn, select(_t), _NAMES)
    assert _plain(found) == {"i": [0], "x": [2.0], "s": [None], "b": [None], "n": [None]}


def test_a_column_of_mixed_types_falls_back_to_the_rows(tmp_path: Path) -> None:
    # SQLite keeps what it is given: a text in an integer column types no Arrow column
    engine = _engine(f"sqlite:///{tmp_path / 't.db'}", [{"x": 1.0, "s": "a", "b": None, "n": 1}])
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t (i, x, s, b, n) VALUES (1, 2.0, 'b', NULL, 'text')")
    with engine.connect() as conn:
        found = fetch_columns(conn, select(_t).order_by(_t.c.i), _NAMES)
    assert found["n"].tolist() == [1, "text"]
    assert found["s"].tolist() == ["a", "b"]
