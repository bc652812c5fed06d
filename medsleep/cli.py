"""The ``medsleep`` command line: parse arguments, call the library, print, pick the exit code.

Exit codes (for cron, Airflow, systemd): 0 success, 1 failure, 2 usage error, 3 ingest
finished with quarantined input, 4 another consolidation holds the lock, 5 audit chain broken.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from medsleep.errors import (
    AuditChainBrokenError,
    InputError,
    LockHeldError,
    MedsleepError,
    StoreUnavailableError,
)
from medsleep.store.engine import DEFAULT_DB_URL, open_store, upgrade_schema

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_QUARANTINED, EXIT_LOCKED, EXIT_AUDIT = 0, 1, 2, 3, 4, 5
DEFAULT_ARCHIVE = "medsleep-archive"

app = typer.Typer(
    help="medsleep: keep the FHIR readings that matter, summarise the rest, lose nothing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Rejected input.", no_args_is_help=True)
query_app = typer.Typer(help="Query readings and summaries for scripts.", no_args_is_help=True)
fixtures_app = typer.Typer(help="Synthetic test data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(query_app, name="query")
app.add_typer(fixtures_app, name="fixtures")

err = Console(stderr=True)

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="MEDSLEEP_DB",
        help="Database URL (sqlite:///file.db or postgresql://...). Env: MEDSLEEP_DB.",
        show_default=True,
    ),
]
ArchiveOption = Annotated[
    Path,
    typer.Option(
        "--archive", envvar="MEDSLEEP_ARCHIVE", help="Archive folder. Env: MEDSLEEP_ARCHIVE."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def _open(db: str) -> Engine:
    return open_store(db)


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextmanager
def _progress_bar(enabled: bool, total: int | None, label: str) -> Iterator[Any]:
    """A Rich progress bar on a terminal; a no-op callback elsewhere."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[readings]:,} readings ({task.fields[rate]:,.0f}/s)"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=total, readings=0, rate=0.0)
        yield bar, task


# --------------------------------------------------------------------------- ingest


@app.command()
def ingest(
    paths: Annotated[
        list[str], typer.Argument(help="NDJSON/JSON files, folders (recursive), or - for stdin.")
    ],
    db: DbOption = DEFAULT_DB_URL,
    strict: Annotated[
        bool, typer.Option("--strict", help="Validate each whole resource with fhir.resources.")
    ] = False,
    fhir_version: Annotated[
        str, typer.Option("--fhir-version", help="R4 (default), R4B or R5.")
    ] = "R4",
    default_tz: Annotated[
        str | None,
        typer.Option(
            "--default-tz",
            help="IANA zone for date-times that lack one (FHIR requires one; default: reject).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Processes that parse while this one writes (0: parse inline, one core).",
        ),
    ] = 0,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Ingest FHIR Observations (NDJSON, JSON, Bundles; files, folders or stdin)."""
    import time

    from medsleep.ingest import ParseOptions, ingest_paths
    from medsleep.ingest.sources import expand_paths, total_bytes

    if fhir_version not in ("R4", "R4B", "R5"):
        raise typer.BadParameter("must be R4, R4B or R5", param_hint="--fhir-version")
    tz = None
    if default_tz is not None:
        try:
            tz = ZoneInfo(default_tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise typer.BadParameter(f"unknown time zone {default_tz!r}") from exc
    options = ParseOptions(strict=strict, fhir_version=fhir_version, default_tz=tz)
    files = expand_paths(paths)
    engine = _open(db)
    started = time.perf_counter()
    with _progress_bar(_show_progress(quiet), total_bytes(files), "ingest") as bar:

        def progress(done: int, readings: int) -> None:
            if bar is not None:
                rate = readings / max(1e-9, time.perf_counter() - started)
                bar[0].update(bar[1], completed=done, readings=readings, rate=rate)

        report = ingest_paths(
            engine,
            files,
            options=options,
            stdin=sys.stdin.buffer,
            workers=workers,
            progress=progress,
        )
    summary = report.as_json()
    if json_out:
        typer.echo(json.dumps(summary))
    else:
        err.print(
            f"ingested {report.resources:,} resources: {report.stored:,} stored "
            f"({report.readings:,} readings), {report.duplicates:,} duplicates, "
            f"{report.skipped:,} skipped, {report.quarantined:,} quarantined "
            f"in {report.seconds:.1f} s"
        )
        for reason, count in sorted(report.skipped_reasons.items()):
            err.print(f"  skipped {count:,}: {reason}")
        if report.quarantined:
            err.print("  see: medsleep quarantine list")
    raise typer.Exit(EXIT_QUARANTINED if report.quarantined else EXIT_OK)


# --------------------------------------------------------------------------- quarantine


@quarantine_app.command("list")
def quarantine_list(
    db: DbOption = DEFAULT_DB_URL,
    limit: Annotated[int, typer.Option("--limit", help="Newest N entries.")] = 50,
    json_out: JsonOption = False,
) -> None:
    """Show rejected input: when, where from, and why."""
    from medsleep.query import list_quarantine

    rows = list_quarantine(_open(db), limit)
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
    Console().print(table)


# --------------------------------------------------------------------------- query


def _write_rows(rows: Iterable[dict[str, Any]], fmt: str, columns: tuple[str, ...]) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    else:
        for row in rows:
            sys.stdout.write(json.dumps(row, default=str) + "\n")
            count += 1
    return count


def _when(text: str | None, option: str) -> int | None:
    from medsleep.timefmt import parse_iso_ms

    if text is None:
        return None
    try:
        return parse_iso_ms(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO date/time: {text!r}", param_hint=option) from exc


FormatOption = Annotated[str, typer.Option("--format", help="csv or jsonl.")]
PatientOption = Annotated[str | None, typer.Option("--patient", help="Patient id.")]
CodeOption = Annotated[str | None, typer.Option("--code", help="LOINC (or other) code.")]
SinceOption = Annotated[str | None, typer.Option("--since", help="ISO date/time (inclusive).")]
UntilOption = Annotated[str | None, typer.Option("--until", help="ISO date/time (exclusive).")]


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
    """Readings in the hot store, with their state (and retention reasons once consolidated)."""
    from medsleep.query import READING_COLUMNS, ReadingFilter, iter_readings

    if state not in ("raw", "retained", "all"):
        raise typer.BadParameter("must be raw, retained or all", param_hint="--state")
    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("must be csv or jsonl", param_hint="--format")
    where = ReadingFilter(patient, code, _when(since, "--since"), _when(until, "--until"), state)
    _write_rows(iter_readings(_open(db), where), fmt, READING_COLUMNS)


# --------------------------------------------------------------------------- fixtures


@fixtures_app.command("generate")
def fixtures_generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write into.")],
    patients: Annotated[int, typer.Option("--patients", min=1)] = 3,
    days: Annotated[float, typer.Option("--days", min=0.001)] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    start: Annotated[
        str | None, typer.Option("--start", help="ISO start, whole minute with zone.")
    ] = None,
    dropout_rate: Annotated[float, typer.Option("--dropout-rate", min=0.0, max=0.99)] = 0.005,
    compress: Annotated[bool, typer.Option("--compress", help="Write .ndjson.gz.")] = False,
) -> None:
    """Write deterministic synthetic ICU monitoring (NDJSON) with labelled clinical events."""
    from datetime import datetime

    from medsleep.synth import generate

    begin = None
    if start is not None:
        try:
            begin = datetime.fromisoformat(start)
        except ValueError as exc:
            raise typer.BadParameter(f"not an ISO date-time: {start!r}") from exc
    try:
        summary = generate(
            out, patients, days, seed, begin, dropout_rate=dropout_rate, compress=compress
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    err.print(
        f"wrote {summary.observations:,} Observations ({summary.readings:,} readings, "
        f"{summary.events} labelled events) for {summary.patients} patients to {out}"
    )


# --------------------------------------------------------------------------- db


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


# --------------------------------------------------------------------------- entry point


_EXIT_FOR: dict[type[MedsleepError], int] = {
    LockHeldError: EXIT_LOCKED,
    AuditChainBrokenError: EXIT_AUDIT,
    InputError: EXIT_USAGE,
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"medsleep: error: {_one_line(message)}\n")
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors and scheduler-friendly exit codes."""
    logging.basicConfig(
        level=os.environ.get("MEDSLEEP_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        app(args=argv, prog_name="medsleep", standalone_mode=True)
    except SystemExit:
        raise
    except MedsleepError as exc:
        _fail(str(exc), _EXIT_FOR.get(type(exc), EXIT_FAILURE))
    except SQLAlchemyError as exc:
        _fail(f"database: {getattr(exc, 'orig', None) or exc}", EXIT_FAILURE)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}", EXIT_FAILURE)
    except Exception as exc:  # the edge: one line for schedulers, traceback only on request
        if os.environ.get("MEDSLEEP_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (MEDSLEEP_DEBUG=1 for a traceback)", 1)


__all__ = ["StoreUnavailableError", "app", "main"]
