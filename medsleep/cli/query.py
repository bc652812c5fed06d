"""Read-only commands for scripts: query readings and summaries."""

from __future__ import annotations

from typing import Annotated

import typer

from medsleep.cli.common import (
    CodeOption,
    DbOption,
    FormatOption,
    PatientOption,
    SinceOption,
    UntilOption,
    open_db,
    query_app,
    when,
    write_rows,
)
from medsleep.store.engine import DEFAULT_DB_URL


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
    write_rows(iter_readings(open_db(db), where), fmt, READING_FIELDS)


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
    write_rows(iter_summaries(open_db(db), where), fmt, SUMMARY_FIELDS)
