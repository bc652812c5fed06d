"""``medsleep db``: the database schema."""

from __future__ import annotations

import typer

from medsleep.cli.common import (
    DbOption,
    app,
    err,
)
from medsleep.store.engine import DEFAULT_DB_URL, upgrade_schema

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = DEFAULT_DB_URL) -> None:
    """Create or upgrade the schema to the newest revision."""
    from medsleep.store.engine import create_store_engine, current_revision

    engine = create_store_engine(db)
    try:
        upgrade_schema(engine)
        err.print(f"schema at revision {current_revision(engine)}")
    finally:
        engine.dispose()
