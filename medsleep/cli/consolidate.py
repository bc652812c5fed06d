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
    EXIT_QUARANTINED,
    ArchiveOption,
    DbOption,
    JsonOption,
    PolicyOption,
    QuietOption,
    anchor_heads,
    app,
    err,
    note_store,
    open_store_at,
    say,
    show_progress,
    when,
)
from medsleep.cli.read import prepare_digests_after_run
from medsleep.store.defaults import DEFAULT_DB_URL


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
        f"in {report.seconds:.1f} s; store {_mib(report.store_bytes_before)} → "
        f"{_mib(report.store_bytes_after)} MiB"
    )


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.1f}"


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
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Decide everything and report what a run would retain, collapse, summarise "
            "and archive, per patient and reason; change nothing (one audit event records it).",
        ),
    ] = False,
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
    if dry_run:
        _dry_run(open_store_at(db, archive), loaded, until_ms, spec, json_out, quiet)
        return
    with _shard_bar(show_progress(quiet)) as progress:
        report = run_consolidation(
            open_store_at(db, archive),
            loaded,
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
        for failure in report.failed:
            err.print(f"  skipped patient {failure['patient']}: {failure['error']}", markup=False)
    if report.status in ("committed", "partial"):
        prepare_digests_after_run(db, loaded, report.run_id)
    if report.failed:  # the others committed; these stay raw until their cause is fixed
        raise typer.Exit(EXIT_QUARANTINED)


def _dry_run(
    store: Any, policy: Any, until_ms: int | None, spec: Any, json_out: bool, quiet: bool
) -> None:
    from medsleep.consolidate.dry_run import dry_run

    with _shard_bar(show_progress(quiet)) as progress:
        report = dry_run(
            store, policy, until_ms=until_ms, executor=spec, progress=progress, record=True
        )
    if json_out:
        typer.echo(json.dumps(report.as_json()))
    else:
        print_dry_run(report.as_json())
    if report.totals.failed:
        raise typer.Exit(EXIT_QUARANTINED)


def print_dry_run(report: dict[str, Any]) -> None:
    """The dry run for people: totals, reasons, then one line a patient (on stderr)."""
    say(
        f"dry run (nothing changed): {report['readings_in']:,} readings in; a run would retain "
        f"{report['retained']:,} ({report['sparse']:,} too sparse to summarise), collapse "
        f"{report['collapsed']:,} into {report['summaries']:,} summaries "
        f"({report['superseded_summaries']:,} replaced), archive {report['archived']:,} in "
        f"{report['archive_files']:,} files, find {report['episodes']:,} episodes; "
        f"{report['held']:,} held; compression {report['compression']:.1f}x"
    )
    table = Table("kept for", "readings", box=None)
    for reason, count in report["by_reason"].items():
        table.add_row(reason, f"{count:,}")
    err.print(table)
    table = Table("patient", "in", "retained", "collapsed", "summaries", "compression", box=None)
    for p in report["patients"]:
        table.add_row(
            str(p["patient"]) + (" (held)" if p["held"] else ""),
            f"{p['readings_in']:,}",
            f"{p['retained']:,}",
            f"{p['collapsed']:,}",
            f"{p['summaries']:,}",
            f"{p['compression']:.1f}x",
        )
    err.print(table)
    for failure in report["failed"]:
        say(f"  could not decide for patient {failure['patient']}: {failure['error']}")


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
    store = open_store_at(db, archive, actor="sleep")
    for report in sleep_loop(store, loaded, executor=parse_executor(executor), once=once):
        err.print(_consolidation_report_line(report))
        if report.status in ("committed", "partial"):
            prepare_digests_after_run(db, loaded, report.run_id)
        anchor_heads()  # after each run, not only when the loop ends
        note_store(db)
