"""A new store is created from the models and stamped at head (store.schema); its schema must
be the one the migrations build, on SQLite and PostgreSQL, and Alembic must agree on revisions.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from medsleep.store.engine import (
    _alembic_config,
    _script,
    create_store_engine,
    current_revision,
    head_revision,
    open_store,
)
from medsleep.store.schema import VERSIONS, head_revisions
from tests.pg import create_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two fresh, empty databases on one backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}", f"sqlite:///{tmp_path / 'migrated.db'}"
    admin: str = request.getfixturevalue("postgres_admin_url")
    return create_database(admin), create_database(admin)


def _migrated(url: str) -> Engine:
    engine = create_store_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "heads")
    return engine


def _rows(conn: Any, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    return {t: sorted(map(tuple, conn.exec_driver_sql(f'SELECT * FROM "{t}"'))) for t in tables}


def _spaced(sql: str | None) -> str:
    # SQLite keeps a table's DDL as written: Alembic's batch mode writes "... NOT NULL)"
    # where CREATE TABLE wrote "... NOT NULL\n)". Layout only; every token is compared.
    return re.sub(r"\s*([(),])\s*", r"\1 ", " ".join((sql or "").split())).strip()


def _sqlite_schema(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        master = sorted(
            (kind, name, table, _spaced(sql))
            for kind, name, table, sql in conn.exec_driver_sql(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
            )
        )
        tables = [name for kind, name, _, _ in master if kind == "table"]
        columns = {t: list(conn.exec_driver_sql(f'PRAGMA table_xinfo("{t}")')) for t in tables}
        pragmas = {
            p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
            for p in ("auto_vacuum", "page_size", "user_version", "application_id", "encoding")
        }
        return {
            "master": master,
            "columns": columns,
            "pragmas": pragmas,
            "rows": _rows(conn, [t for t in tables if t != "sqlite_sequence"]),
        }


_PG_QUERIES = {
    # columns in their order (dropped columns leave gaps in attnum: rank them instead)
    "columns": """
        SELECT table_name, column_name,
               rank() OVER (PARTITION BY table_name ORDER BY ordinal_position),
               data_type, character_maximum_length, numeric_precision, is_nullable,
               column_default, is_identity, identity_generation
        FROM information_schema.columns WHERE table_schema = current_schema()""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes "
    "WHERE schemaname = current_schema()",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = current_schema()""",
    "sequences": "SELECT sequence_name, data_type, start_value, increment FROM "
    "information_schema.sequences WHERE sequence_schema = current_schema()",
    "triggers": "SELECT event_object_table, trigger_name, action_statement FROM "
    "information_schema.triggers WHERE trigger_schema = current_schema()",
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema()""",
    "types": "SELECT t.typname, t.typtype FROM pg_type t JOIN pg_namespace n "
    "ON n.oid = t.typnamespace WHERE n.nspname = current_schema() AND t.typtype <> 'c'",
}


def _postgres_schema(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        schema: dict[str, Any] = {
            name: sorted(map(tuple, conn.exec_driver_sql(query)))
            for name, query in _PG_QUERIES.items()
        }
        tables = sorted(r[0] for r in schema["relations"] if r[1] == "r")
        schema["rows"] = _rows(conn, tables)
        # sequences' positions: a fresh store's next id is the migrated store's
        schema["next_ids"] = [
            (t, conn.exec_driver_sql(f'SELECT last_value, is_called FROM "{t}"').one())
            for t in sorted(r[0] for r in schema["relations"] if r[1] == "S")
        ]
        return schema


def _schema(engine: Engine) -> dict[str, Any]:
    return (_sqlite_schema if engine.dialect.name == "sqlite" else _postgres_schema)(engine)


def test_a_new_store_has_exactly_the_migrated_schema(two_urls: tuple[str, str]) -> None:
    fresh = open_store(two_urls[0])
    migrated = _migrated(two_urls[1])
    try:
        created, wanted = _schema(fresh), _schema(migrated)
        assert created["rows"]["alembic_version"] == [(head_revision(),)]
        assert set(created) == set(wanted)
        for part in wanted:
            assert created[part] == wanted[part], part
        # and the pieces this store relies on are really there, not merely equal
        if fresh.dialect.name == "sqlite":
            sql = {name: sql for _, name, _, sql in created["master"]}
            assert "AUTOINCREMENT" in sql["reading"]
            assert "WITHOUT ROWID" in sql["resource_seen"]
            assert created["pragmas"]["auto_vacuum"] == 2  # incremental
    finally:
        fresh.dispose()
        migrated.dispose()


def test_a_new_store_can_be_downgraded_and_upgraded_again(db_url: str) -> None:
    """A stamped store is an ordinary one to Alembic: its migrations run both ways on it."""
    engine = open_store(db_url)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0005")
    engine.dispose()
    engine = open_store(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_alembic_reads_the_revision_this_store_records(db_url: str) -> None:
    engine = open_store(db_url)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (head_revision(),)
    engine.dispose()


def _alembic_heads(versions: Path) -> tuple[str, ...]:
    config = Config()
    config.set_main_option("script_location", str(versions.parent))
    return tuple(sorted(ScriptDirectory.from_config(config).get_heads()))


def test_head_revisions_read_from_the_files_are_alembics() -> None:
    assert head_revisions() == tuple(sorted(_script().get_heads()))


def test_head_revisions_follow_branches_and_merges(tmp_path: Path) -> None:
    versions = tmp_path / "migrations" / "versions"
    shutil.copytree(VERSIONS, versions, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "migrations" / "script.py.mako").write_text("")
    last = max(head_revisions(versions))

    def write(name: str, revision: str, down: object, annotated: bool = False) -> None:
        typed = ": str" if annotated else ""
        (versions / f"{name}.py").write_text(
            f'"""x"""\nrevision{typed} = "{revision}"\ndown_revision = {down!r}\n'
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
        )

    write("9001_a", "9001", last)
    write("9002_b", "9002", last, annotated=True)  # side by side: two heads
    assert head_revisions(versions) == ("9001", "9002") == _alembic_heads(versions)
    write("9003_merge", "9003", ("9001", "9002"))
    assert head_revisions(versions) == ("9003",) == _alembic_heads(versions)


def test_opening_a_store_never_loads_alembic(tmp_path: Path) -> None:
    """Creating a new store, and opening a current one, is done without Alembic."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    code = (
        "import sys; from medsleep.store.engine import open_store; "
        f"open_store({url!r}).dispose(); open_store({url!r}).dispose(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert re.search(r"\S", out.stderr) is None


def test_two_first_users_at_once_both_open_the_store(db_url: str) -> None:
    """Two processes that find the database empty at the same moment: one creates the
    schema, the other waits for it (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock)
    and finds it current."""
    code = (
        "import sys\nfrom medsleep.store.engine import current_revision, open_store\n"
        "engine = open_store(sys.argv[1])\nprint(current_revision(engine))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [proc.communicate()[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    assert outs == [head_revision()] * 3
