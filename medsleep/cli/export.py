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
    err,
    open_db,
    show_progress,
    when,
)
from medsleep.store.engine import DEFAULT_DB_URL

ByOption = Annotated[str, typer.Option("--by", help="Who runs it (recorded on the audit chain).")]


def _say(text: str) -> None:
    """One message on stderr, never wrapped: schedulers read logs line by line."""
    err.print(text, markup=False, soft_wrap=True)


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
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    by: ByOption = "cli",
    json_out: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Compliance export: readings, summaries, provenance and audit events, with a manifest."""
    from medsleep.export.job import FORMATS, ExportRequest
    from medsleep.export.job import export as run_export
    from medsleep.timefmt import wall_clock_ms

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
        include_archived=include_archived,
        validate_all=validate_all,
    )
    with _count_bar(show_progress(quiet), "export") as progress:
        report = run_export(
            open_db(db),
            out,
            request,
            archive_root=archive,
            now_ms=wall_clock_ms(),
            actor=by,
            progress=progress,
        )
    if json_out:
        typer.echo(json.dumps(report.as_json()))
        return
    files = ", ".join(f"{f.name} {f.count:,}" for f in report.files if f.name != "manifest.json")
    _say(
        f"exported {report.resources:,} {'resources' if fmt == 'fhir' else 'rows'} to {out} "
        f"in {report.seconds:.1f} s ({report.rate:,.0f}/s): {files}"
    )
    if report.excluded:
        left_out = ", ".join(
            f"{n:,} {kind.replace('_', ' ')}" for kind, n in report.excluded.items()
        )
        _say(f"left out (not current data): {left_out}")
    if report.purged_files:
        _say(
            f"{len(set(report.purged_files))} archive files behind exported summaries were "
            "purged: their original readings are gone (the summaries remain)"
        )
    for issue in report.errors:
        _say(
            f"{issue.count:,} original resources fail fhir.resources validation "
            f"(exported as they are); see {issue.name}"
        )


@app.command()
def purge(
    before: Annotated[
        str,
        typer.Option("--before", help="Purge archive files whose readings are all before this."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be purged; change nothing.")
    ] = False,
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    policy: PolicyOption = None,
    by: ByOption = "cli",
    json_out: JsonOption = False,
) -> None:
    """Delete archive files past the policy's retention; never a held patient's.

    Exits 1 when an archive file is missing or fails its checksum (it is left alone);
    files refused for a legal hold are reported, and are not a failure.
    """
    from medsleep.archive.purge import purge as run_purge
    from medsleep.policy import load_policy
    from medsleep.timefmt import iso, wall_clock_ms

    before_ms = when(before, "--before")
    assert before_ms is not None
    report = run_purge(
        open_db(db),
        archive,
        before_ms=before_ms,
        archive_years=load_policy(policy).archive_years,
        now_ms=wall_clock_ms(),
        actor=by,
        dry_run=dry_run,
    )
    if json_out:
        typer.echo(json.dumps(report.as_json()))
    else:
        verb = "would purge" if dry_run else "purged"
        readings = sum(f.rows for f in report.purged)
        _say(
            f"{verb} {len(report.purged)} archive files ({readings:,} readings) before "
            f"{iso(before_ms)}; retention keeps everything after {iso(report.retention_cutoff_ms)}"
        )
        if report.held:
            patients = ", ".join(sorted({f.patient for f in report.held}))
            _say(f"refused {len(report.held)} files of patients on legal hold: {patients}")
        if report.within_retention:
            _say(f"kept {len(report.within_retention)} files within retention")
        if report.leftovers_removed:
            _say(f"removed {len(report.leftovers_removed)} files left by an interrupted purge")
        for problem in report.problems:
            _say(f"FAIL {problem.name}: {problem.reason}")
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)
