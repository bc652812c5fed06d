"""``medsleep restore``, ``archive verify``, ``hold``, ``purge``: the cold archive and what
may leave it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medsleep.cli.common import (
    DEFAULT_ARCHIVE,
    EXIT_FAILURE,
    ArchiveOption,
    ByOption,
    DbOption,
    JsonLinesOption,
    JsonOption,
    PatientOption,
    PolicyOption,
    SinceOption,
    UntilOption,
    app,
    err,
    open_db,
    open_store_at,
    say,
    table_console,
    when,
)
from medsleep.store.defaults import DEFAULT_DB_URL

archive_app = typer.Typer(help="The cold archive of collapsed readings.", no_args_is_help=True)
hold_app = typer.Typer(help="Legal holds: patients never collapsed.", no_args_is_help=True)
app.add_typer(archive_app, name="archive")
app.add_typer(hold_app, name="hold")


@hold_app.command("add")
def hold_add(
    patient: Annotated[str, typer.Argument(help="Patient id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (case, order number).")],
    db: DbOption = DEFAULT_DB_URL,
    by: Annotated[str, typer.Option("--by", help="Who places the hold.")] = "cli",
) -> None:
    """Place a legal hold: the patient's raw readings are never collapsed."""
    from medsleep.archive.holds import add_hold

    add_hold(open_store_at(db, Path(DEFAULT_ARCHIVE), actor=by), patient, reason)
    err.print(f"hold placed on {patient}")


@hold_app.command("list")
def hold_list(db: DbOption = DEFAULT_DB_URL, json_out: JsonLinesOption = False) -> None:
    """Active legal holds."""
    from medsleep.archive.holds import list_holds

    holds = list_holds(open_db(db))
    if json_out:
        for hold in holds:
            typer.echo(json.dumps(hold))
        return
    table = Table("patient", "since", "by", "reason")
    for hold in holds:
        table.add_row(hold["patient"], hold["since"], hold["by"], hold["reason"])
    table_console().print(table)


@hold_app.command("release")
def hold_release(
    patient: Annotated[str, typer.Argument(help="Patient id.")],
    db: DbOption = DEFAULT_DB_URL,
    by: Annotated[str, typer.Option("--by")] = "cli",
) -> None:
    """Release a patient's legal hold."""
    from medsleep.archive.holds import release_hold

    release_hold(open_store_at(db, Path(DEFAULT_ARCHIVE), actor=by), patient)
    err.print(f"hold on {patient} released")


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

    if run is None and patient is None:
        raise typer.BadParameter("give --run ID or --patient P")
    report = run_restore(
        open_store_at(db, archive),
        run_id=run,
        patient=patient,
        since_ms=when(since, "--since"),
        until_ms=when(until, "--until"),
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
    clean: Annotated[
        bool,
        typer.Option(
            "--clean",
            help="Remove files a killed run left unrecorded whose readings are all still in "
            "the hot store, and temporary files (audited; waits for no running consolidation).",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Check every archive file against its recorded sha256 and row count."""
    from medsleep.archive.orphans import clean_orphans
    from medsleep.archive.verify import verify_archive

    store = open_store_at(db, archive)
    cleaned = clean_orphans(store) if clean else None
    checks = verify_archive(store)
    bad = [c for c in checks if not c.ok]
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "files": len(checks),
                    "failed": [c.__dict__ for c in bad],
                    "notes": [c.__dict__ for c in checks if c.ok and c.problem],
                }
                | ({"cleaned": cleaned.as_json()} if cleaned else {})
            )
        )
    else:
        if cleaned is not None:
            err.print(
                f"cleaned {len(cleaned.removed)} orphan files ({cleaned.readings_in_removed:,} "
                f"readings, all still in the hot store) and {len(cleaned.temp_removed)} "
                f"temporary files; kept {len(cleaned.kept)}"
            )
            for kept in cleaned.kept:
                err.print(f"kept {kept['name']}: {kept['why']}", markup=False)
        for check in checks:
            if check.problem:
                err.print(
                    f"{'FAIL' if not check.ok else 'note'} {check.name}: {check.problem}",
                    markup=False,
                )
        err.print(f"{len(checks) - len(bad)} of {len(checks)} archive files verified")
    if bad:
        raise typer.Exit(EXIT_FAILURE)


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
    from medsleep.timefmt import iso

    before_ms = when(before, "--before")
    assert before_ms is not None
    report = run_purge(
        open_store_at(db, archive, actor=by),
        before_ms=before_ms,
        archive_years=load_policy(policy).archive_years,
        dry_run=dry_run,
    )
    if json_out:
        typer.echo(json.dumps(report.as_json()))
    else:
        verb = "would purge" if dry_run else "purged"
        readings = sum(f.rows for f in report.purged)
        say(
            f"{verb} {len(report.purged)} archive files ({readings:,} readings) before "
            f"{iso(before_ms)}; retention keeps everything after {iso(report.retention_cutoff_ms)}"
        )
        if report.held:
            patients = ", ".join(sorted({f.patient for f in report.held}))
            say(f"refused {len(report.held)} files of patients on legal hold: {patients}")
        if report.within_retention:
            say(f"kept {len(report.within_retention)} files within retention")
        if report.leftovers_removed:
            say(f"removed {len(report.leftovers_removed)} files left by an interrupted purge")
        for problem in report.problems:
            say(f"FAIL {problem.name}: {problem.reason}")
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)
