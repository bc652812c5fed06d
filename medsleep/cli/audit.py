"""``medsleep audit``: verify and show the tamper-evident audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from medsleep.cli.common import (
    DbOption,
    JsonOption,
    SinceOption,
    app,
    err,
    open_db,
    table_console,
    when,
)
from medsleep.errors import (
    AuditChainBrokenError,
)
from medsleep.store.engine import DEFAULT_DB_URL

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


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
