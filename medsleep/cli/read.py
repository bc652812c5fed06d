"""Read-only commands for scripts: query readings and summaries."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from medsleep.cli.common import (
    CodeOption,
    DbOption,
    FormatOption,
    JsonLinesOption,
    JsonOption,
    PatientOption,
    PolicyOption,
    SinceOption,
    UntilOption,
    app,
    err,
    open_db,
    table_console,
    when,
    write_rows,
)
from medsleep.store.defaults import DEFAULT_DB_URL

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


digest_app = typer.Typer(help="The morning digest, prepared ahead.", no_args_is_help=True)
app.add_typer(digest_app, name="digest")


def digest_zone_and_night(policy: Any) -> tuple[Any, Any]:
    """The dashboard's display zone and night window, from the same settings it reads
    (``MEDSLEEP_DASHBOARD_TZ`` or the policy's zone; ``MEDSLEEP_NIGHT``): a digest prepared for
    another zone or window would never be shown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from medsleep.errors import InputError
    from medsleep.read.digest import parse_night

    name = os.environ.get("MEDSLEEP_DASHBOARD_TZ") or policy.timezone
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {name!r} (MEDSLEEP_DASHBOARD_TZ)") from exc
    return zone, parse_night(os.environ.get("MEDSLEEP_NIGHT"))


def prepare_digests_after_run(db: str, policy: Any, run_id: int | None) -> None:
    """After a consolidation run: prepare the digests of the nights it covered (sleep-time
    compute). A failure here is reported, never turned into a failed consolidation."""
    import time

    from sqlalchemy.exc import SQLAlchemyError

    from medsleep.errors import MedsleepError
    from medsleep.read.prepared import prepare_after_run
    from medsleep.timefmt import wall_clock_ms

    if run_id is None:
        return
    started = time.perf_counter()
    try:
        zone, night = digest_zone_and_night(policy)
        done = prepare_after_run(open_db(db), policy, zone, run_id, now_ms=wall_clock_ms(),
                                 night=night)  # fmt: skip
    except (MedsleepError, SQLAlchemyError) as exc:
        err.print(f"digest not prepared: {exc}", markup=False)
        return
    if done:
        err.print(f"prepared {len(done)} nights' digests in {time.perf_counter() - started:.1f} s")


@digest_app.command("prepare")
def digest_prepare(
    db: DbOption = DEFAULT_DB_URL,
    policy: PolicyOption = None,
    night_ending: Annotated[
        str | None,
        typer.Option("--night-ending", help="Local date YYYY-MM-DD (default: the last night)."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Score a night's digest now and store it, so the dashboard opens it at once (run it
    after the night window ends, e.g. from cron at 07:05; consolidate does it after a run)."""
    from datetime import date

    from medsleep.policy import load_policy
    from medsleep.read.digest import newest_data_ms, night_window
    from medsleep.read.digest import night_ending as ending
    from medsleep.read.prepared import prepare_digest
    from medsleep.timefmt import iso, wall_clock_ms

    loaded = load_policy(policy)
    zone, night = digest_zone_and_night(loaded)
    engine, now = open_db(db), wall_clock_ms()
    if night_ending is None:
        newest = newest_data_ms(engine)
        anchor = now if newest is None else min(now, newest)
        start, end, _ = night_window(anchor, zone, night)
        start, end = ending(datetime.fromtimestamp(max(end - 1, 0) / 1000, zone).date(), zone,
                            night)  # fmt: skip
    else:
        try:
            start, end = ending(date.fromisoformat(night_ending), zone, night)
        except ValueError as exc:
            raise typer.BadParameter("not YYYY-MM-DD", param_hint="--night-ending") from exc
    if end > now:
        raise typer.BadParameter("that night has not ended yet", param_hint="--night-ending")
    digest = prepare_digest(engine, loaded, zone, start, end, now_ms=now)
    statuses = Counter(r.status for r in digest.rows)
    if json_out:
        typer.echo(json.dumps({"night_start": iso(start), "night_end": iso(end),
                               "patients": len(digest.rows), **statuses}))  # fmt: skip
    else:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        err.print(f"prepared the digest of {iso(start)} – {iso(end)}: {len(digest.rows)} "
                  f"patients ({counts})")  # fmt: skip
