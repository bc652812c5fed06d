"""Administration: schema, audit log, legal holds."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from medsleep.cli.common import (
    DbOption,
    JsonOption,
    SinceOption,
    audit_app,
    db_app,
    err,
    hold_app,
    open_db,
    table_console,
    when,
)
from medsleep.errors import (
    AuditChainBrokenError,
)
from medsleep.store.engine import DEFAULT_DB_URL, upgrade_schema


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


@audit_app.command("verify")
def audit_verify(
    db: DbOption = DEFAULT_DB_URL,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            help="SEQ:HASH recorded earlier (an export manifest's auditChainHead): also catch "
            "the newest events cut off.",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Verify the hash chain; exit 5 naming the first broken entry."""
    from medsleep.audit import verify_chain

    expected = None
    if head is not None:
        seq, _, digest = head.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise typer.BadParameter("expected SEQ:SHA256", param_hint="--head")
        expected = (int(seq), digest)
    with open_db(db).connect() as conn:
        status = verify_chain(conn, expected)
    if json_out:
        typer.echo(json.dumps(status.__dict__))
    elif status.ok:
        err.print(f"audit chain intact: {status.events:,} events verified")
    if not status.ok:
        raise AuditChainBrokenError(
            f"audit chain broken at entry {status.broken_at}: {status.problem}"
        )


@audit_app.command("show")
def audit_show(
    db: DbOption = DEFAULT_DB_URL, since: SinceOption = None, json_out: JsonOption = False
) -> None:
    """Audit events, oldest first."""
    from medsleep.audit import iter_events
    from medsleep.timefmt import iso

    with open_db(db).connect() as conn:
        events = list(iter_events(conn, when(since, "--since")))
    if json_out:
        for event in events:
            typer.echo(json.dumps({**event.model_dump(), "at": iso(event.at_ms)}))
        return
    table = Table("seq", "at", "actor", "action", "details")
    for event in events:
        table.add_row(
            str(event.seq), iso(event.at_ms), event.actor, event.action, event.details_json[:120]
        )
    table_console().print(table)


@hold_app.command("add")
def hold_add(
    patient: Annotated[str, typer.Argument(help="Patient id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (case, order number).")],
    db: DbOption = DEFAULT_DB_URL,
    by: Annotated[str, typer.Option("--by", help="Who places the hold.")] = "cli",
) -> None:
    """Place a legal hold: the patient's raw readings are never collapsed."""
    from medsleep.archive.holds import add_hold
    from medsleep.timefmt import wall_clock_ms

    add_hold(open_db(db), patient, reason, by=by, now_ms=wall_clock_ms())
    err.print(f"hold placed on {patient}")


@hold_app.command("list")
def hold_list(db: DbOption = DEFAULT_DB_URL, json_out: JsonOption = False) -> None:
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
    from medsleep.timefmt import wall_clock_ms

    release_hold(open_db(db), patient, by=by, now_ms=wall_clock_ms())
    err.print(f"hold on {patient} released")
