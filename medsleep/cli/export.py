"""Commands of the export room (registered on ``app`` when imported): export, purge."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from medsleep.cli.common import (
    DEFAULT_ARCHIVE,
    ArchiveOption,
    ByOption,
    DbOption,
    JsonOption,
    PatientOption,
    QuietOption,
    SinceOption,
    UntilOption,
    app,
    err,
    open_store_at,
    say,
    show_progress,
    when,
)
from medsleep.store.defaults import DEFAULT_DB_URL


@contextmanager
def _count_bar(enabled: bool, label: str) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]{label}"),
        TextColumn("{task.completed:,} resources"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int) -> None:
            bar.update(task, completed=done)

        yield progress


@app.command()
def export(
    out: Annotated[
        Path, typer.Option("--out", help="New or empty folder to write the export into.")
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="fhir (Bulk Data NDJSON, R4), csv or parquet.")
    ] = "fhir",
    patient: PatientOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    updated_since: Annotated[
        str | None,
        typer.Option(
            "--updated-since",
            help="Only what medsleep stored or made from this instant on (lastUpdated, as "
            "Bulk Data _since): e.g. the transactionTime of the last export's manifest.",
        ),
    ] = None,
    include_archived: Annotated[
        bool,
        typer.Option(
            "--include-archived",
            help="Also export the original resources of collapsed readings (from the archive).",
        ),
    ] = False,
    validate_all: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Validate every line with fhir.resources, originals included (slow).",
        ),
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="URL the folder will be served from: the manifest's file URLs start with it "
            "(default: file:// URLs of the files).",
        ),
    ] = None,
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    by: ByOption = "cli",
    json_out: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Compliance export: readings, summaries, provenance and audit events, with a manifest."""
    from medsleep.export.job import FORMATS, ExportRequest
    from medsleep.export.job import export as run_export

    if fmt not in FORMATS:
        raise typer.BadParameter("must be fhir, csv or parquet", param_hint="--format")
    if validate_all and fmt != "fhir":
        raise typer.BadParameter(
            "validates FHIR resources: needs --format fhir", param_hint="--validate"
        )
    request = ExportRequest(
        format=fmt,
        patient=patient,
        since_ms=when(since, "--since"),
        until_ms=when(until, "--until"),
        updated_since_ms=when(updated_since, "--updated-since"),
        include_archived=include_archived,
        validate_all=validate_all,
        base_url=base_url,
    )
    store = open_store_at(db, archive, actor=by)
    if patient is not None:
        from medsleep.read.known import require_known

        require_known(store.engine, patient=patient)
    with _count_bar(show_progress(quiet), "export") as progress:
        report = run_export(store, out, request, progress=progress)
    if json_out:
        typer.echo(json.dumps(report.as_json()))
        return
    files = ", ".join(f"{f.name} {f.count:,}" for f in report.files if f.name != "manifest.json")
    say(
        f"exported {report.resources:,} {'resources' if fmt == 'fhir' else 'rows'} to {out} "
        f"in {report.seconds:.1f} s ({report.rate:,.0f}/s): {files}"
    )
    if report.excluded:
        left_out = ", ".join(
            f"{n:,} {kind.replace('_', ' ')}" for kind, n in report.excluded.items()
        )
        say(f"left out (not current data): {left_out}")
    if report.purged_files:
        say(
            f"{len(set(report.purged_files))} archive files behind exported summaries were "
            "purged: their original readings are gone (the summaries remain)"
        )
    for issue in report.errors:
        say(
            f"{issue.count:,} original resources fail fhir.resources validation "
            f"(exported as they are); see {issue.name}"
        )
