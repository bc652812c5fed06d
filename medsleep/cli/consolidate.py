"""The sleep-time job and its archive: consolidate, sleep, runs, restore, archive verify."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from medsleep.cli.common import (
    DEFAULT_ARCHIVE,
    EXIT_FAILURE,
    ArchiveOption,
    DbOption,
    JsonOption,
    PatientOption,
    PolicyOption,
    QuietOption,
    SinceOption,
    UntilOption,
    app,
    archive_app,
    err,
    open_db,
    show_progress,
    table_console,
    when,
)
from medsleep.store.engine import DEFAULT_DB_URL


def _deadline(text: str | None, tz_name: str) -> int | None:
    """An ISO date-time, or HH:MM meaning the next such local time."""
    from datetime import datetime, time, timedelta

    from medsleep.timefmt import to_ms

    if text is None:
        return None
    try:
        if len(text) <= 5 and ":" in text:
            zone = ZoneInfo(tz_name)
            now = datetime.now(zone)
            at = datetime.combine(now.date(), time.fromisoformat(text), zone)
            return to_ms(at if at > now else at + timedelta(days=1))
        return to_ms(datetime.fromisoformat(text))
    except ValueError as exc:
        raise typer.BadParameter(f"not HH:MM or ISO: {text!r}", param_hint="--deadline") from exc


def _consolidation_report_line(report: Any) -> str:
    return (
        f"run {report.run_id}: {report.status} — {report.readings_in:,} readings in, "
        f"{report.retained:,} retained, {report.collapsed:,} collapsed into "
        f"{report.summaries:,} summaries, {report.archived:,} archived, {report.held:,} held, "
        f"{report.episodes:,} episodes, {report.shards_done}/{report.shards} patients "
        f"in {report.seconds:.1f} s"
    )


@app.command()
def consolidate(
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    policy: PolicyOption = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Consolidate readings before this ISO time "
            "(default: now minus the policy's hot horizon).",
        ),
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            help="Stop cleanly between patients after this "
            "(ISO, or HH:MM local); the next run resumes.",
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="local, processes[:N] or dask://HOST:PORT.")
    ] = "local",
    json_out: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Sleep-time consolidation: keep what matters, summarise the rest, archive it verified."""
    from medsleep.consolidate.executors import parse_executor
    from medsleep.consolidate.job import consolidate as run_consolidation
    from medsleep.policy import load_policy

    loaded = load_policy(policy)
    spec = parse_executor(executor)
    until_ms = when(until, "--until")
    deadline_ms = _deadline(deadline, loaded.timezone)
    with _shard_bar(show_progress(quiet)) as progress:
        report = run_consolidation(
            db,
            loaded,
            archive_root=archive,
            until_ms=until_ms,
            deadline_ms=deadline_ms,
            executor=spec,
            progress=progress,
        )
    if json_out:
        keys = (
            "run_id",
            "status",
            "readings_in",
            "retained",
            "collapsed",
            "summaries",
            "archived",
            "held",
            "seconds",
        )
        full = report.as_json()
        typer.echo(json.dumps({**{k: full[k] for k in keys}, **full}))
    else:
        err.print(_consolidation_report_line(report))


@contextmanager
def _shard_bar(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("[bold]consolidate"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} patients"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("consolidate", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


@app.command()
def sleep(
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    policy: PolicyOption = None,
    executor: Annotated[str, typer.Option("--executor")] = "local",
    once: Annotated[
        bool, typer.Option("--once", help="One quiet-hours window, then exit.")
    ] = False,
) -> None:
    """Wait for the policy's quiet hours and a backlog, consolidate until they end, repeat."""
    from medsleep.consolidate.executors import parse_executor
    from medsleep.consolidate.schedule import sleep_loop
    from medsleep.policy import load_policy

    loaded = load_policy(policy)
    for report in sleep_loop(
        db, loaded, archive_root=archive, executor=parse_executor(executor), once=once
    ):
        err.print(_consolidation_report_line(report))


@app.command()
def runs(
    db: DbOption = DEFAULT_DB_URL,
    limit: Annotated[int, typer.Option("--limit")] = 20,
    json_out: JsonOption = False,
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


@app.command()
def restore(
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    run: Annotated[
        int | None, typer.Option("--run", help="Restore what this run collapsed.")
    ] = None,
    patient: PatientOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    json_out: JsonOption = False,
) -> None:
    """Put archived readings back in the hot store exactly; supersede their summaries."""
    from medsleep.archive.restore import restore as run_restore
    from medsleep.timefmt import wall_clock_ms

    if run is None and patient is None:
        raise typer.BadParameter("give --run ID or --patient P")
    report = run_restore(
        open_db(db),
        archive,
        run_id=run,
        patient=patient,
        since_ms=when(since, "--since"),
        until_ms=when(until, "--until"),
        now_ms=wall_clock_ms(),
    )
    if json_out:
        typer.echo(json.dumps(report.as_json()))
    else:
        err.print(
            f"restored {report.readings:,} readings from {len(report.files)} archive "
            f"files; {report.summaries:,} summaries superseded "
            f"({report.already_present:,} already present)"
        )


@archive_app.command("verify")
def archive_verify(
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    json_out: JsonOption = False,
) -> None:
    """Check every archive file against its recorded sha256 and row count."""
    from medsleep.archive.verify import verify_archive

    checks = verify_archive(open_db(db), archive)
    bad = [c for c in checks if not c.ok]
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "files": len(checks),
                    "failed": [c.__dict__ for c in bad],
                    "notes": [c.__dict__ for c in checks if c.ok and c.problem],
                }
            )
        )
    else:
        for check in checks:
            if check.problem:
                err.print(
                    f"{'FAIL' if not check.ok else 'note'} {check.name}: {check.problem}",
                    markup=False,
                )
        err.print(f"{len(checks) - len(bad)} of {len(checks)} archive files verified")
    if bad:
        raise typer.Exit(EXIT_FAILURE)
