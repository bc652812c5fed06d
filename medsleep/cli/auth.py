"""``medsleep users`` and ``medsleep token``: who may use the dashboard and the server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medsleep.cli.common import (
    DEFAULT_TOKENS,
    DEFAULT_USERS,
    JsonLinesOption,
    TokensOption,
    UsersOption,
    app,
    err,
    table_console,
)

users_app = typer.Typer(help="Dashboard users, roles and passwords.", no_args_is_help=True)
app.add_typer(users_app, name="users")
token_app = typer.Typer(help="Bearer tokens for medsleep serve.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (for OIDC: the e-mail the IdP gives).")],
    role: Annotated[str, typer.Option("--role", help="clinician, compliance or admin.")],
    users: UsersOption = Path(DEFAULT_USERS),
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
    ] = False,
    oidc: Annotated[
        bool, typer.Option("--oidc", help="No password: signs in through the identity provider.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Change an existing user's role or password.")
    ] = False,
) -> None:
    """Add a dashboard user with a role and a salted argon2id password hash."""
    from medsleep.auth.users import ROLES, add_user

    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint="--role")
    if oidc and password_stdin:
        raise typer.BadParameter("--oidc users have no password", param_hint="--password-stdin")
    password = None if oidc else _read_password(password_stdin)
    user = add_user(users, name, role, password, replace=replace)
    err.print(f"user {user.name} ({user.role}) saved in {users}")


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="User name.")],
    users: UsersOption = Path(DEFAULT_USERS),
) -> None:
    """Remove a dashboard user."""
    from medsleep.auth.users import remove_user

    remove_user(users, name)
    err.print(f"user {name} removed from {users}")


@users_app.command("list")
def users_list(users: UsersOption = Path(DEFAULT_USERS)) -> None:
    """Dashboard users and their roles (never their hashes)."""
    from medsleep.auth.users import load_users

    table = Table("user", "role", "sign-in")
    for user in load_users(users).values():
        table.add_row(user.name, user.role, "password" if user.password_hash else "OIDC")
    table_console().print(table)


@token_app.command("add")
def token_add(
    name: Annotated[str, typer.Argument(help="Who the token is for, e.g. ward-7-gateway.")],
    tokens: TokensOption = Path(DEFAULT_TOKENS),
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read and/or write (default: both).")
    ] = None,
    env: Annotated[
        bool,
        typer.Option("--env", help="Do not write the file; print a MEDSLEEP_TOKENS entry."),
    ] = False,
) -> None:
    """Create a token: printed once on stdout; only its sha256 is stored."""
    from medsleep.auth.tokens import SCOPES, add_token, new_token, parse_token_list, token_digest

    scopes = tuple(scope or SCOPES)
    if env:
        token = new_token()
        entry = f"{name}:{token_digest(token)}:{'+'.join(sorted(scopes))}"
        parse_token_list(entry)  # checks the name and the scopes
        typer.echo(token)
        typer.echo(f"add to MEDSLEEP_TOKENS: {entry}", err=True)
        return
    token = add_token(tokens, name, scopes)
    typer.echo(token)
    typer.echo(
        f"token {name!r} ({', '.join(sorted(scopes))}) added to {tokens}; "
        "it is shown only now: keep it in the client's secret store",
        err=True,
    )


@token_app.command("list")
def token_list_command(
    tokens: TokensOption = Path(DEFAULT_TOKENS),
    json_out: JsonLinesOption = False,
) -> None:
    """List token names, scopes and creation times (never the tokens)."""
    from medsleep.auth.tokens import load_tokens

    found = load_tokens(tokens)
    if json_out:
        for t in found:
            row = {"name": t.name, "scopes": sorted(t.scopes), "created": t.created}
            typer.echo(json.dumps(row))
        return
    if not found:
        err.print(f"no tokens in {tokens}")
        return
    table = Table("name", "scopes", "created")
    for t in found:
        table.add_row(t.name, ", ".join(sorted(t.scopes)), t.created)
    table_console().print(table)


@token_app.command("revoke")
def token_revoke(name: str, tokens: TokensOption = Path(DEFAULT_TOKENS)) -> None:
    """Remove a token; running servers stop accepting it at their next request."""
    from medsleep.auth.tokens import TokenError, revoke_token

    if not revoke_token(tokens, name):
        raise TokenError(f"no token named {name!r} in {tokens}")
    err.print(f"token {name!r} revoked")
