"""The login gate: the hospital's identity provider (OIDC via ``st.login``) when ``[auth]`` is
configured in Streamlit's secrets, otherwise the local users file. Every login, and every
failed one, is appended to the audit chain."""

from __future__ import annotations

import importlib.util
import time
from collections import defaultdict, deque

import streamlit as st
import ui_common as ui
from sqlalchemy.exc import SQLAlchemyError
from streamlit.errors import StreamlitSecretNotFoundError

from medsleep.auth.users import SessionUser, authenticate, record_login
from medsleep.errors import MedsleepError
from medsleep.timefmt import wall_clock_ms

MAX_FAILURES, LOCK_SECONDS = 5, 60  # per user name, across sessions of this server


@st.cache_resource(show_spinner=False)
def _failures() -> defaultdict[str, deque[float]]:
    return defaultdict(lambda: deque(maxlen=MAX_FAILURES))


def _locked(name: str) -> bool:
    recent = _failures()[name]
    return len(recent) == MAX_FAILURES and time.monotonic() - recent[0] < LOCK_SECONDS


def _audit(name: str, ok: bool, method: str, reason: str = "") -> None:
    try:
        record_login(
            ui.engine(), name=name, ok=ok, method=method, now_ms=wall_clock_ms(), reason=reason
        )
    except (MedsleepError, SQLAlchemyError) as exc:  # no audit entry, no login
        ui.fail(f"Cannot record the login in the audit log: {exc}")


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, StreamlitSecretNotFoundError):
        return False


def login_gate() -> SessionUser | None:
    """The logged-in user (re-checked against the users file on every run), or None after
    drawing the login form (the caller shows nothing else)."""
    user = ui.current_user()
    if user is not None:
        return user
    ended = st.session_state.pop("session_ended", None)
    if ended is not None:
        _audit(ended, False, "session", "user removed from the users file")
        st.session_state["session_notice"] = f"{ended} no longer has access: log in again."
    if oidc_configured():
        return _oidc_login()
    return _password_login()


def _oidc_login() -> SessionUser | None:
    if not st.user.is_logged_in:
        st.title("medsleep")
        st.write("Log in with your hospital account to see the dashboard.")
        if importlib.util.find_spec("authlib") is None:
            st.warning("[auth] is configured but Authlib is not installed: pip install Authlib")
        st.button("Log in", type="primary", on_click=st.login)
        return None
    name = str(st.user.get("email") or st.user.get("name") or "")
    user = ui.users().get(name)
    if user is None:
        st.title("medsleep")
        if not st.session_state.get("oidc_refused"):
            _audit(name or "(no email)", False, "oidc", "not in the users file")
            st.session_state["oidc_refused"] = True
        st.error(f"{name} has no role here. Ask an administrator to run: medsleep users add.")
        st.button("Log out", on_click=st.logout)
        return None
    _audit(name, True, "oidc")
    session = SessionUser.of(user)
    st.session_state["user"] = session
    return session


def _password_login() -> SessionUser | None:
    st.title("medsleep")
    if notice := st.session_state.get("session_notice"):
        st.warning(notice)
    users = ui.users()
    if not users:
        st.warning(
            f"No users yet in {ui.settings().users_file} — add one with "
            "`medsleep users add NAME --role admin`."
        )
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return None
    if _locked(name):
        _audit(name, False, "password", "too many failures")
        st.error(f"Too many failed attempts — wait {LOCK_SECONDS} s and try again.")
        return None
    user = authenticate(users, name, password)
    if user is None:
        _failures()[name].append(time.monotonic())
        _audit(name, False, "password", "unknown user or wrong password")
        st.error("Wrong user name or password.")
        return None
    _failures().pop(name, None)
    _audit(name, True, "password")
    st.session_state.pop("session_notice", None)
    st.session_state["user"] = SessionUser.of(user)  # never the password hash
    st.rerun()


def logout() -> None:
    st.session_state.pop("user", None)
    st.session_state.pop("oidc_refused", None)
    st.session_state.pop("session_notice", None)
    st.session_state.pop("export_report", None)  # the next user must not see it
    if oidc_configured() and st.user.is_logged_in:
        st.logout()
