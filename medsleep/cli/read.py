"""Read-only commands for scripts: query readings and summaries."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from medsleep.cli.common import (
    CodeOption,
    DbOption,
    FormatOption,
    JsonLinesOption,
    PatientOption,
    SinceOption,
    UntilOption,
    app,
    err,
    open_db,
    table_console,
    when,
    write_rows,
)
from medsleep.store.engine import DEFAULT_DB_URL

if TYPE_CHECKING:
    from sqlalchemy import Engine

query_app = typer.Typer(help="Query readings and summaries for scripts.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Rejected input.", no_args_is_help=True)
app.add_typer(query_app, name="query")
app.add_typer(quarantine_app, name="quarantine")


def _known(engine: Engine, patient: str | None) -> Engine:
    """The engine, once a patient the query names is known (else exit 2, not an empty list)."""
    from medsleep.read.known import require_known

    require_known(engine, patient=patient)
    return engine


@query_app.command("readings")
def query_readings(
    db: DbOption = DEFAULT_DB_URL,
    patient: PatientOption = None,
    code: CodeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    state: Annotated[str, typer.Option("--state", help="raw, retained or all.")] = "all",
    fmt: FormatOption = "csv",
) -> None:
    """Readings in the hot store, with their state and retention reasons."""
    from medsleep.read.readings import READING_FIELDS, ReadingFilter, iter_readings

    if state not in ("raw", "retained", "all"):
        raise typer.BadParameter("must be raw, retained or all", param_hint="--state")
    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("must be csv or jsonl", param_hint="--format")
    where = ReadingFilter(patient, code, when(since, "--since"), when(until, "--until"), state)
    write_rows(iter_readings(_known(open_db(db), patient), where), fmt, READING_FIELDS)


@query_app.command("summaries")
def query_summaries(
    db: DbOption = DEFAULT_DB_URL,
    patient: PatientOption = None,
    code: CodeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    fmt: FormatOption = "csv",
) -> None:
    """Active summaries with their statistics."""
    from medsleep.read.readings import SUMMARY_FIELDS, ReadingFilter, iter_summaries

    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("must be csv or jsonl", param_hint="--format")
    where = ReadingFilter(patient, code, when(since, "--since"), when(until, "--until"))
    write_rows(iter_summaries(_known(open_db(db), patient), where), fmt, SUMMARY_FIELDS)


@app.command()
def runs(
    db: DbOption = DEFAULT_DB_URL,
    limit: Annotated[int, typer.Option("--limit")] = 20,
    json_out: JsonLinesOption = False,
) -> None:
    """The history of consolidation runs, newest first."""
    from medsleep.read.runs import list_runs

    rows = list_runs(open_db(db), limit)
    if json_out:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
        return
    if not rows:
        err.print("no consolidation runs yet — run medsleep consolidate")
        return
    table = Table(
        "run",
        "started",
        "until",
        "status",
        "executor",
        "patients",
        "in",
        "retained",
        "collapsed",
        "summaries",
        "seconds",
    )
    for row in rows:
        c = row["counts"]
        table.add_row(
            str(row["id"]),
            row["started"],
            row["until"],
            row["status"],
            row["executor"],
            f"{row['shards_done']}/{row['shards_total']}",
            f"{c.get('readings_in', 0):,}",
            f"{c.get('retained', 0):,}",
            f"{c.get('collapsed', 0):,}",
            f"{c.get('summaries', 0):,}",
            str(c.get("seconds", "")),
        )
    table_console().print(table)


@quarantine_app.command("list")
def quarantine_list(
    db: DbOption = DEFAULT_DB_URL,
    limit: Annotated[int, typer.Option("--limit", help="Newest N entries.")] = 50,
    json_out: JsonLinesOption = False,
) -> None:
    """Show rejected input: when, where from, and why."""
    from medsleep.read.quarantine import list_quarantine

    rows = list_quarantine(open_db(db), limit)
    if json_out:
        for row in rows:
            typer.echo(json.dumps({k: v for k, v in row.items() if k != "at_ms"}))
        return
    if not rows:
        err.print("quarantine is empty")
        return
    table = Table("id", "at", "source", "position", "error")
    for row in rows:
        table.add_row(str(row["id"]), row["at"], row["source"], row["position"], row["error"])
    table_console().print(table)
