"""The store opens, migrates itself, and its migrations match its models, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

import medsleep.store.models  # noqa: F401
from medsleep.store.engine import (
    _alembic_config,
    create_store_engine,
    current_revision,
    head_revision,
    open_store,
    upgrade_schema,
)


def test_schema_created_on_first_use(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_migrations_match_models(db_url: str) -> None:
    # through the migrations: open_store creates a new store from the models themselves
    engine = create_store_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "heads")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(db_url: str) -> None:
    engine = open_store(db_url)
    upgrade_schema(engine)
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_sqlite_uses_wal(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
