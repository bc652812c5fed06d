"""Issue 12 (dashboard): a browser session holds only the user's name and role, and is
re-checked against the users file on every run — `medsleep users remove` ends it at once."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine

import tests.dashboard.test_dashboard_app as dashboard_app
from medsleep.auth.users import SessionUser, add_user, remove_user
from tests.dashboard.test_dashboard_app import FAST, PASSWORDS, app, events, login, titles

dash, users_template = dashboard_app.dash, dashboard_app.users_template  # the same fixtures


def _users_file() -> Path:
    return Path(os.environ["MEDSLEEP_USERS"])


def test_the_session_keeps_name_and_role_never_the_password_hash(dash: Engine) -> None:
    at = login(app(), "root", PASSWORDS["root"])
    assert titles(at) == ["Morning digest"]
    assert at.session_state["user"] == SessionUser("root", "admin")
    kept = repr(at.session_state.to_dict())
    assert "argon2" not in kept
    assert "password_hash" not in kept


def test_a_removed_user_loses_the_open_session_on_the_next_run(dash: Engine) -> None:
    at = login(app(), "root", PASSWORDS["root"])
    assert titles(at) == ["Morning digest"]
    remove_user(_users_file(), "root")
    at.run()
    assert not at.exception
    assert titles(at) == ["medsleep"]  # the login form, nothing else
    assert "user" not in at.session_state
    assert not at.get("vega_lite_chart")
    assert not at.dataframe
    assert not at.metric
    assert "root no longer has access" in at.warning[0].value
    assert events(dash)[-1] == (
        "root",
        "dashboard.login_failed",
        {"method": "session", "reason": "user removed from the users file"},
    )


def test_a_removed_user_cannot_keep_a_page_run_directly(dash: Engine) -> None:
    at = app("ana")
    remove_user(_users_file(), "ana")
    at.switch_page("app_pages/patient.py")
    at.run()
    assert titles(at) == ["medsleep"]
    assert "user" not in at.session_state


def test_a_changed_role_applies_at_once(dash: Engine) -> None:
    at = login(app(), "root", PASSWORDS["root"])
    add_user(_users_file(), "root", "compliance", PASSWORDS["root"], replace=True, hasher=FAST)
    at.run()
    assert titles(at) == ["Overview"]
    assert at.session_state["user"] == SessionUser("root", "compliance")
    assert "**root** (compliance)" in at.sidebar.caption[0].value
