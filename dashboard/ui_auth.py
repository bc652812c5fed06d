"""The login gate: the hospital's identity provider (OIDC via ``st.login``) when ``[auth]`` is
configured in Streamlit's secrets, otherwise the local users file. Every login, and every
failed one, is appended to the audit chain."""

from __future__ import annotations

import importlib.util
import time
from collections import defaultdict, deque
from urllib.parse import urlsplit

import streamlit as st
import streamlit.components.v1 as components
import ui_common as ui
from sqlalchemy.exc import SQLAlchemyError
from streamlit.errors import StreamlitSecretNotFoundError

from medsleep.auth.sessions import COOKIE, TTL_MS, read_session, session_key, sign_session
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
    drawing the login form (the caller shows nothing else). A browser reload comes back
    through the signed session cookie; the page asked for before login is remembered."""
    user = ui.current_user() or _from_cookie()
    if user is not None:
        _write_cookie()
        return user
    _remember_destination()
    ended = st.session_state.pop("session_ended", None)
    if ended is not None:
        _audit(ended, False, "session", "user removed from the users file")
        st.session_state["session_notice"] = f"{ended} no longer has access: log in again."
    if oidc_configured():
        return _oidc_login()
    return _password_login()


def _key() -> bytes:
    try:
        return session_key(ui.settings().session_key_file)
    except MedsleepError as exc:
        ui.fail(str(exc))


def _from_cookie() -> SessionUser | None:
    """The user of a valid session cookie, still in the users file; not after a logout in
    this browser session (the browser still sends the cookie until the page reloads)."""
    token = st.context.cookies.get(COOKIE)
    if not isinstance(token, str) or st.session_state.get("logged_out") or oidc_configured():
        return None
    name = read_session(token, _key(), now_ms=wall_clock_ms())
    user = ui.users().get(name) if name else None
    if user is None:
        return None
    _audit(user.name, True, "session cookie")
    session = SessionUser.of(user)
    st.session_state["user"] = session
    return session


def _cookie_script(value: str, max_age: int) -> None:
    url = st.context.url
    secure = "; Secure" if isinstance(url, str) and url.startswith("https:") else ""
    components.html(
        f"<script>window.parent.document.cookie = '{COOKIE}={value}; path=/; "
        f"max-age={max_age}; SameSite=Strict{secure}';</script>",
        height=0,
    )


def _write_cookie() -> None:
    """On every run while logged in by password: a run that switches pages discards what it
    drew, and drawing the same script again does not reload its frame."""
    token = st.session_state.get("set_cookie")
    if token:
        _cookie_script(token, TTL_MS // 1000)


def _remember_destination() -> None:
    """Before login: the page and patient the URL asked for (a deep link), opened after it."""
    if "after_login" in st.session_state:
        return
    url = st.context.url
    path = urlsplit(url if isinstance(url, str) else "").path.strip("/").rsplit("/", 1)[-1]
    st.session_state["after_login"] = (path, st.query_params.get("patient", ""))


def destination(pages: tuple[str, ...]) -> tuple[str, str] | None:
    """The deep link to open now that the user is logged in, once, if their role has it."""
    wanted = st.session_state.pop("after_login", None)
    if not wanted or wanted[0] not in pages:
        return None
    return wanted[0], wanted[1]


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
    if st.session_state.get("logged_out") and not st.session_state.get("cookie_cleared"):
        _cookie_script("", 0)
        st.session_state["cookie_cleared"] = True
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
    expires = wall_clock_ms() + TTL_MS
    st.session_state["set_cookie"] = sign_session(name, _key(), expires_ms=expires)
    for key in ("logged_out", "cookie_cleared", "session_notice"):
        st.session_state.pop(key, None)
    st.session_state["user"] = SessionUser.of(user)  # never the password hash
    st.rerun()


def logout() -> None:
    st.session_state.pop("user", None)
    st.session_state.pop("oidc_refused", None)
    st.session_state.pop("session_notice", None)
    st.session_state.pop("export_report", None)  # the next user must not see it
    st.session_state["logged_out"] = True  # and the cookie is cleared on the next run
    st.session_state.pop("set_cookie", None)
    if oidc_configured() and st.user.is_logged_in:
        st.logout()
