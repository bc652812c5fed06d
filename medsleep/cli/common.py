"""What every command shares: the app, options, consoles, exit codes, small helpers."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

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
from typer.core import TyperGroup

from medsleep.errors import (
    AuditChainBrokenError,
    InputError,
    LockHeldError,
    MedsleepError,
    ScopeError,
)
from medsleep.store.defaults import DEFAULT_ARCHIVE_FOLDER

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from medsleep.store.handle import Store

# The store and SQLAlchemy load when a command opens the store, not with the CLI: ``--help``
# and a usage error stay quick.

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_QUARANTINED, EXIT_LOCKED, EXIT_AUDIT = 0, 1, 2, 3, 4, 5
DEFAULT_ARCHIVE = DEFAULT_ARCHIVE_FOLDER

_EXIT_FOR: dict[type[MedsleepError], int] = {
    LockHeldError: EXIT_LOCKED,
    AuditChainBrokenError: EXIT_AUDIT,
    InputError: EXIT_USAGE,
    ScopeError: EXIT_USAGE,  # no such run or patient: the request is wrong, not the store
}


def exit_code_of(exc: MedsleepError) -> int:
    """The exit code of the nearest mapped class of the error (``evaluate``'s NoReadingsError
    is an InputError: bad input, exit 2), else 1."""
    for cls in type(exc).__mro__:
        code = _EXIT_FOR.get(cls)
        if code is not None:
            return code
    return EXIT_FAILURE


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr (schedulers read logs line by line), then exit with ``code``."""
    sys.stderr.write(f"medsleep: error: {' '.join(message.split())}\n")
    sys.exit(code)


# ``medsleep --help`` lists the commands in the order of a night: in, consolidate, look, prove.
COMMAND_ORDER = (
    "ingest", "consolidate", "sleep", "runs", "query", "quarantine", "restore", "archive", "hold",
    "export", "purge", "audit", "serve", "token", "dashboard", "users", "db", "fixtures",
)  # fmt: skip


class _Commands(TyperGroup):
    """Turns the library's narrow exceptions into one-line messages and exit codes."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        from medsleep.cli.examples import dress

        command = super().get_command(ctx, cmd_name)
        if command is not None:  # its example and whole summary (and its sub-commands')
            dress(command, cmd_name)
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                anchor_heads()
        except BrokenPipeError:
            quiet_broken_pipe()
        except MedsleepError as exc:
            fail(str(exc), exit_code_of(exc))
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}", EXIT_FAILURE)
        except Exception as exc:
            if not _is_database_error(exc):
                raise
            fail(f"database: {getattr(exc, 'orig', None) or exc}", EXIT_FAILURE)


def _is_database_error(exc: Exception) -> bool:
    """An SQLAlchemy error; none can be raised before SQLAlchemy is loaded."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def quiet_broken_pipe() -> NoReturn:
    """``medsleep query ... | head``: the reader left, which is not an error. Point stdout at
    /dev/null so the interpreter's final flush cannot fail again, and exit 0."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_OK)


def _version(value: bool) -> None:
    if value:
        from medsleep import __version__

        typer.echo(f"medsleep {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Commands,
    help="medsleep: keep the FHIR readings that matter, summarise the rest, lose nothing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help that wraps instead of cutting defaults short with "…" at 80 columns.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """medsleep: keep the FHIR readings that matter, summarise the rest, lose nothing.

    Example: medsleep ingest fixtures/ && medsleep consolidate --json
    """


err = Console(stderr=True)


def table_console() -> Console:
    # Scripts and logs get full-width tables, not an 80-column squeeze.
    return Console() if sys.stdout.isatty() else Console(width=200)


DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="MEDSLEEP_DB",
        help="Database URL (sqlite:///file.db or postgresql://...) or a SQLite file path. "
        "Env: MEDSLEEP_DB.",
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
# Lists print JSON Lines: one object a line, nothing at all for an empty list.
JsonLinesOption = Annotated[
    bool, typer.Option("--json", help="Print JSON Lines: one object a line (none: nothing).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


AUDIT_ANCHOR_ENV = "MEDSLEEP_AUDIT_ANCHOR"


def audit_key() -> bytes | None:
    """The audit HMAC key the environment names (see ``medsleep.audit.audit_key_from``)."""
    from medsleep.audit import audit_key_from

    return audit_key_from(os.environ)


# Stores this command opened, with their audit chain head at the time: after the command,
# a changed head is anchored (MEDSLEEP_AUDIT_ANCHOR: a file, or "syslog").
_opened: dict[str, tuple[int, str] | None] = {}


def note_store(db: str) -> None:
    """Remember ``db``'s chain head now, so that the head is anchored after the command."""
    if db in _opened or not os.environ.get(AUDIT_ANCHOR_ENV):
        return
    from medsleep.audit import chain_head
    from medsleep.store.engine import open_store

    engine = open_store(db)
    try:
        with engine.connect() as conn:
            _opened[db] = chain_head(conn)
    finally:
        engine.dispose()


def anchor_heads() -> None:
    """Anchor the chain head of every store noted whose head changed (see ``note_store``)."""
    target = os.environ.get(AUDIT_ANCHOR_ENV)
    opened = dict(_opened)
    _opened.clear()
    if not target or not opened:
        return
    from medsleep.audit import anchor_line, anchor_record, append_anchor, chain_head
    from medsleep.store.engine import open_store
    from medsleep.timefmt import wall_clock_ms

    key = audit_key()
    for db, before in opened.items():
        engine = open_store(db)
        try:
            with engine.connect() as conn:
                head = chain_head(conn)
        finally:
            engine.dispose()
        if head is None or head == before:
            continue
        record = anchor_record(head, key, wall_clock_ms())
        if target == "syslog":
            import syslog

            syslog.syslog(syslog.LOG_INFO, anchor_line(record))
        else:
            append_anchor(Path(target), record)


def db_url(db: str) -> str:
    """``--db`` as a URL: a plain path (``--db x.db``) means that SQLite file."""
    if "://" in db:
        return db
    if not db.strip():
        raise typer.BadParameter("is empty", param_hint="--db")
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def open_db(db: str) -> Engine:
    """The store at ``db``, appending audit events keyed with the edge's audit key."""
    from medsleep.audit import keyed_engine
    from medsleep.store.engine import open_store

    db = db_url(db)
    key = audit_key()
    note_store(db)
    return keyed_engine(open_store(db), key)


def open_store_at(db: str, archive: Path, actor: str = "cli") -> Store:
    """The store (database and archive folder) a command works on, acting as ``actor``, its
    audit events keyed with the edge's audit key."""
    from medsleep.store.handle import Store

    return Store(open_db(db), archive, actor=actor)


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(enabled: bool, total: int | None, label: str) -> Iterator[Any]:
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


def write_rows(rows: Iterable[dict[str, Any]], fmt: str, columns: tuple[str, ...]) -> int:
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


def when(text: str | None, option: str) -> int | None:
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


PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", envvar="MEDSLEEP_POLICY", help="Policy TOML (default: shipped)."),
]


DEFAULT_USERS = "medsleep-users.json"

UsersOption = Annotated[
    Path,
    typer.Option("--users", envvar="MEDSLEEP_USERS", help="Users file. Env: MEDSLEEP_USERS."),
]

DEFAULT_TOKENS = "medsleep-tokens.toml"

TokensOption = Annotated[
    Path,
    typer.Option(
        "--tokens",
        envvar="MEDSLEEP_TOKENS_FILE",
        help="Tokens file (sha256 digests, TOML). Env: MEDSLEEP_TOKENS_FILE.",
    ),
]

ByOption = Annotated[str, typer.Option("--by", help="Who runs it (recorded on the audit chain).")]


def say(text: str) -> None:
    """One message on stderr, never wrapped: schedulers read logs line by line."""
    err.print(text, markup=False, soft_wrap=True)
