"""``medsleep db``: the database schema, what the store holds, and giving space back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medsleep.cli.common import (
    DbOption,
    JsonOption,
    app,
    err,
    open_db,
    table_console,
)
from medsleep.store.defaults import DEFAULT_DB_URL

db_app = typer.Typer(help="Database schema, size and space.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = DEFAULT_DB_URL) -> None:
    """Create or upgrade the schema to the newest revision."""
    from medsleep.store.engine import create_store_engine, current_revision, upgrade_schema

    engine = create_store_engine(db)
    try:
        upgrade_schema(engine)
        err.print(f"schema at revision {current_revision(engine)}")
    finally:
        engine.dispose()


def _mib(nbytes: int | None) -> str:
    return "?" if nbytes is None else f"{nbytes / 2**20:,.1f}"


@db_app.command("stats")
def db_stats(db: DbOption = DEFAULT_DB_URL, json_out: JsonOption = False) -> None:
    """Readings per state, rows and bytes per table, archive files per month."""
    from medsleep.read.space import store_stats

    engine = open_db(db)
    try:
        stats = store_stats(engine)
    finally:
        engine.dispose()
    if json_out:
        typer.echo(json.dumps(stats.as_json()))
        return
    console = table_console()
    console.print(
        f"store {_mib(stats.store_bytes)} MiB ({_mib(stats.free_bytes)} MiB free, "
        f"auto-vacuum {stats.auto_vacuum}); {stats.hot_readings:,} readings in the hot store: "
        + ", ".join(f"{n:,} {state}" for state, n in stats.readings_by_state.items())
    )
    tables = Table("table", "rows", "MiB", "bytes/row", title="tables (with their indexes)")
    for t in stats.tables:
        per_row = "" if t.bytes is None or not t.rows else f"{t.bytes / t.rows:,.0f}"
        tables.add_row(t.table, f"{t.rows:,}", _mib(t.bytes), per_row)
    console.print(tables)
    if stats.archive:
        months = Table("month", "state", "files", "readings", "MiB", title="archive")
        for m in stats.archive:
            months.add_row(m.month, m.state, f"{m.files:,}", f"{m.rows:,}", _mib(m.bytes))
        console.print(months)


@db_app.command("vacuum")
def db_vacuum(db: DbOption = DEFAULT_DB_URL) -> None:
    """Rewrite a SQLite store whole and switch it to incremental auto-vacuum (once, for a
    store created before medsleep set it; needs free disk about the store's size)."""
    from medsleep.store.space import vacuum

    engine = open_db(db)
    try:
        done = vacuum(engine)
    finally:
        engine.dispose()
    if not done.returned:
        err.print("nothing to do: PostgreSQL reclaims space with autovacuum (docs/deploy.md)")
        return
    err.print(f"store {_mib(done.bytes_before)} → {_mib(done.bytes_after)} MiB")


@db_app.command("backup")
def db_backup(
    destination: Annotated[Path, typer.Argument(help="the new file (never replaced)")],
    db: DbOption = DEFAULT_DB_URL,
    json_out: JsonOption = False,
) -> None:
    """Copy the embedded SQLite store online (SQLite's backup: one snapshot, the WAL's commits
    included, ingest and the night go on), checked and fsynced before it gets its name; audited.
    Back up the archive folder after it (docs/deploy.md); PostgreSQL: use pg_dump."""
    from medsleep.audit import append_event, audited_transaction
    from medsleep.store.backup import backup_store
    from medsleep.timefmt import wall_clock_ms

    engine = open_db(db)
    try:
        done = backup_store(engine, destination)
        audited_transaction(
            engine,
            lambda conn: append_event(
                conn, actor="cli", action="db.backup", details=done.as_json(), at_ms=wall_clock_ms()
            ),
        )
    finally:
        engine.dispose()
    if json_out:
        typer.echo(json.dumps(done.as_json()))
        return
    err.print(f"backup {done.path}: {_mib(done.bytes)} MiB, sha256 {done.sha256}, check ok")
