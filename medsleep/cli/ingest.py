"""Commands that bring data in: ingest, quarantine, synthetic fixtures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from medsleep.cli.common import (
    EXIT_OK,
    EXIT_QUARANTINED,
    DbOption,
    JsonOption,
    QuietOption,
    app,
    db_url,
    err,
    open_db,
    progress_bar,
    show_progress,
)
from medsleep.store.defaults import DEFAULT_DB_URL

fixtures_app = typer.Typer(help="Synthetic test data.", no_args_is_help=True)
app.add_typer(fixtures_app, name="fixtures")


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
        int | None,
        typer.Option(
            "--workers",
            min=0,
            help="Processes that parse while this one writes (0: parse inline, one core; "
            "default: one per CPU, at most 8, for inputs of 16 MiB or more).",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Ingest FHIR Observations (NDJSON, JSON, Bundles; files, folders or stdin)."""
    import time

    from medsleep.ingest.parse_stream import ParseStream, auto_workers
    from medsleep.ingest.parsing import ParseOptions
    from medsleep.ingest.sources import total_bytes, walk_inputs
    from medsleep.store.body_codec import codec_before_open

    if fhir_version not in ("R4", "R4B", "R5"):
        raise typer.BadParameter("must be R4, R4B or R5", param_hint="--fhir-version")
    tz = None
    if default_tz is not None:
        try:
            tz = ZoneInfo(default_tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise typer.BadParameter(f"unknown time zone {default_tz!r}") from exc
    options = ParseOptions(strict=strict, fhir_version=fhir_version, default_tz=tz)
    walked = walk_inputs(paths)
    files = walked.files
    size = total_bytes(files)
    if workers is None:
        workers = auto_workers(size)
    stream = ParseStream.of_files(files, options=options, stdin=sys.stdin.buffer, workers=workers)
    with stream:
        # the parse workers start on the first pieces while this process loads the SQL stack
        codec, propose = codec_before_open(db_url(db))
        stream.start(codec, propose=propose)
        from medsleep.ingest import ingest_stream

        engine = open_db(db)
        started = time.perf_counter()
        with progress_bar(show_progress(quiet), size, "ingest") as bar:

            def progress(done: int, readings: int) -> None:
                if bar is not None:
                    rate = readings / max(1e-9, time.perf_counter() - started)
                    bar[0].update(bar[1], completed=done, readings=readings, rate=rate)

            report = ingest_stream(
                engine, stream, files, progress=progress, not_read=walked.not_read
            )
    summary = report.as_json() | {"files": report.files}
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
        for account in report.files:
            if "error" in account:
                err.print(f"  unreadable: {account['error']}", markup=False)
            elif "not_read" in account:
                err.print(f"  not read: {account['file']} ({account['not_read']})", markup=False)
        if report.quarantined:
            err.print("  see: medsleep quarantine list")
    raise typer.Exit(EXIT_QUARANTINED if report.quarantined else EXIT_OK)


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
