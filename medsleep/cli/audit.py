"""``medsleep audit``: verify and show the tamper-evident audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from medsleep.cli.common import (
    DbOption,
    JsonLinesOption,
    JsonOption,
    SinceOption,
    app,
    audit_key,
    err,
    open_db,
    table_console,
    when,
)
from medsleep.errors import (
    AuditChainBrokenError,
)
from medsleep.store.defaults import DEFAULT_DB_URL

if TYPE_CHECKING:
    from medsleep.audit import ChainStatus

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
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="File holding the audit HMAC key: check every keyed event's HMAC and catch "
            "events appended without it. Default: env MEDSLEEP_AUDIT_KEY_FILE or "
            "MEDSLEEP_AUDIT_KEY; none: unkeyed check.",
        ),
    ] = None,
    anchor: Annotated[
        Path | None,
        typer.Option(
            "--anchor",
            help="Anchor file (or a syslog extract) of chain heads written after each run: "
            "the chain must still hold every one of them.",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Verify the hash chain; exit 5 naming the first broken entry."""
    from medsleep.audit import audit_key_file, read_anchors, verify_chain

    expected = None
    if head is not None:
        seq, _, digest = head.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise typer.BadParameter("expected SEQ:SHA256", param_hint="--head")
        expected = (int(seq), digest)
    secret = audit_key_file(key) if key is not None else audit_key()
    heads = read_anchors(anchor, secret) if anchor is not None else []
    with open_db(db).connect() as conn:
        status = verify_chain(conn, expected, key=secret, heads=heads)
    if json_out:
        typer.echo(json.dumps({**status.__dict__, "keyed_check": secret is not None}))
    elif status.ok:
        err.print(_intact_line(status, secret is not None, len(heads) if anchor else None))
    if not status.ok:
        raise AuditChainBrokenError(
            f"audit chain broken at entry {status.broken_at}: {status.problem}"
        )


def _intact_line(status: ChainStatus, keyed_check: bool, anchored: int | None) -> str:
    held = f", {anchored:,} anchored heads held" if anchored is not None else ""
    if keyed_check:
        before = status.events - status.keyed
        earlier = f", {before:,} earlier unkeyed" if before else ""
        return (
            f"audit chain intact: {status.events:,} events verified, "
            f"{status.keyed:,} with the key{earlier}{held}"
        )
    note = "unkeyed check: sha256 links only, no audit key given"
    if status.unchecked:
        note += f"; {status.unchecked:,} keyed events' HMACs not checked"
    return f"audit chain intact: {status.events:,} events verified{held} ({note})"


@audit_app.command("show")
def audit_show(
    db: DbOption = DEFAULT_DB_URL, since: SinceOption = None, json_out: JsonLinesOption = False
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
