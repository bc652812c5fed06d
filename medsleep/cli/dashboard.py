"""Commands of the dashboard room (registered on ``app`` when imported): ``medsleep dashboard``
starts the Streamlit app; ``medsleep users`` manages the local users who may log in to it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from medsleep.cli.common import (
    DEFAULT_USERS,
    DbOption,
    PolicyOption,
    UsersOption,
    app,
    db_url,
    err,
    open_db,
)
from medsleep.errors import MedsleepError
from medsleep.store.defaults import DEFAULT_DB_URL

APP_PATH = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
# Starts Streamlit with the library already imported, so the first session is not the slow one.
LAUNCHER = "serve.py"


class DashboardMissingError(MedsleepError):
    """The Streamlit app (dashboard/app.py) is not next to this installation."""


def streamlit_invocation(
    *,
    db: str,
    port: int,
    address: str,
    users: Path,
    policy: Path | None,
    tz: str | None,
    app_path: Path = APP_PATH,
) -> tuple[list[str], dict[str, str]]:
    """The ``streamlit run`` command line and environment that ``medsleep dashboard`` runs."""
    if not app_path.is_file():
        raise DashboardMissingError(
            f"{app_path} not found: the dashboard ships in the source tree (dashboard/), "
            "install medsleep from a checkout with pip install -e ."
        )
    argv = [
        sys.executable, str(app_path.with_name(LAUNCHER)), "run", str(app_path),
        "--server.port", str(port),
        "--server.address", address,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    env = dict(os.environ)
    env.update({"MEDSLEEP_DB": db, "MEDSLEEP_USERS": str(users.resolve())})
    if policy is not None:
        env["MEDSLEEP_POLICY"] = str(policy.resolve())
    if tz:
        env["MEDSLEEP_DASHBOARD_TZ"] = tz
    return argv, env


@app.command()
def dashboard(
    db: DbOption = DEFAULT_DB_URL,
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option("--address", help="Interface to listen on (0.0.0.0: all).")
    ] = "127.0.0.1",
    users: UsersOption = Path(DEFAULT_USERS),
    policy: PolicyOption = None,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz", envvar="MEDSLEEP_DASHBOARD_TZ", help="Display time zone (default: policy's)."
        ),
    ] = None,
) -> None:
    """Start the clinician dashboard (Streamlit) on this store; Ctrl-C stops it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from medsleep.auth.users import load_users

    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise typer.BadParameter(f"unknown time zone {tz!r}", param_hint="--tz") from exc
    db = db_url(db)
    open_db(db).dispose()  # fail here, with a clean message, if the store cannot be opened
    argv, env = streamlit_invocation(
        db=db, port=port, address=address, users=users, policy=policy, tz=tz
    )
    if not load_users(users):
        err.print(
            f"no dashboard users in {users} — add one with: medsleep users add NAME --role admin"
        )
    host = "localhost" if address in ("127.0.0.1", "0.0.0.0") else address
    err.print(f"medsleep dashboard: http://{host}:{port}  (Ctrl-C to stop)")
    sys.stderr.flush()
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)
