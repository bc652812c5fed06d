"""The library's Core tables (store.core_tables, generated) are exactly the models' tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from medsleep.store import core_tables, gen_core_tables
from medsleep.store.tables import METADATA

DIALECTS = [sqlite.dialect(), postgresql.dialect()]


def ddl(metadata: MetaData, dialect: Dialect) -> dict[str, list[str]]:
    """Each table's CREATE TABLE and CREATE INDEX statements as ``dialect`` writes them."""
    out: dict[str, list[str]] = {}
    for table in metadata.sorted_tables:
        indexes = sorted(str(CreateIndex(i).compile(dialect=dialect)) for i in table.indexes)
        out[table.name] = [str(CreateTable(table).compile(dialect=dialect)), *indexes]
    return out


def defaults(table: Table) -> list[tuple[str, object, object, object]]:
    return [
        (
            c.name,
            getattr(c.default, "arg", None),
            getattr(c.server_default, "arg", None),
            c.autoincrement,
        )
        for c in table.c
    ]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_the_same_ddl_as_the_models_on_each_dialect(dialect: Dialect) -> None:
    models = gen_core_tables.model_metadata()
    assert ddl(METADATA, dialect) == ddl(models, dialect)


def test_the_same_column_order_defaults_and_options() -> None:
    models = gen_core_tables.model_metadata()
    assert sorted(METADATA.tables) == sorted(models.tables)
    for name, table in models.tables.items():
        core = METADATA.tables[name]
        assert [c.name for c in core.c] == [c.name for c in table.c]  # archive files' order
        assert defaults(core) == defaults(table)
        assert dict(core.dialect_kwargs) == dict(table.dialect_kwargs)


def test_the_committed_file_is_what_the_generator_writes() -> None:
    """Change ``store.models``, then run ``python -m medsleep.store.gen_core_tables``."""
    written = gen_core_tables.source(gen_core_tables.model_metadata())
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", "core_tables.py", "-"],
        input=written, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert formatted == Path(core_tables.__file__).read_text()


def test_a_changed_model_changes_the_generated_source() -> None:
    """The comparison above can fail: a column's default, type or order shows in the text."""
    models = gen_core_tables.model_metadata()
    changed = MetaData()
    for table in models.sorted_tables:
        table.to_metadata(changed)
    changed.tables["reading"].c.state.default.arg = "retained"  # type: ignore[union-attr]
    assert gen_core_tables.source(changed) != gen_core_tables.source(models)
    assert 'default="retained"' in gen_core_tables.source(changed)
