"""What every dashboard page shares: settings, the store, cached views, the page gate, times.

Settings come from the environment here, at the dashboard's edge (``medsleep dashboard`` sets
them from its options); the library only receives them as arguments:

- ``MEDSLEEP_DB``: database URL (default ``sqlite:///medsleep.db``)
- ``MEDSLEEP_USERS``: local users file (default ``medsleep-users.json``)
- ``MEDSLEEP_POLICY``: policy TOML (default: the shipped policy)
- ``MEDSLEEP_DASHBOARD_TZ``: IANA time zone for display (default: the policy's)
- ``MEDSLEEP_ARCHIVE``: the archive folder exports read originals from (default
  ``medsleep-archive``, as the CLI's ``--archive``)
- ``MEDSLEEP_EXPORT_DIR``: where the Compliance page writes exports, one new folder each
  (default ``medsleep-exports``)
- ``MEDSLEEP_NIGHT``: the morning digest's night window, local time (default ``22:00-07:00``)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st
from sqlalchemy import Engine

from medsleep import read
from medsleep.audit import audit_key_from, keyed_engine
from medsleep.auth.users import SessionUser, User, load_users, recheck_session
from medsleep.errors import MedsleepError
from medsleep.policy import Policy, load_policy
from medsleep.read.digest import parse_night
from medsleep.read.text import local_time, utc_text
from medsleep.store.defaults import DEFAULT_DB_URL
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.timefmt import ms_to_datetime, to_ms, wall_clock_ms

DEFAULT_USERS_FILE = "medsleep-users.json"
DEFAULT_ARCHIVE = "medsleep-archive"  # the CLI's --archive default (medsleep.cli.common)
DEFAULT_EXPORT_DIR = "medsleep-exports"
NO_READINGS = "No readings yet — run `medsleep ingest FILES` to load FHIR Observations."
NO_RUNS = "No consolidation runs yet — run `medsleep consolidate` (or `medsleep sleep`)."
TTL = 60  # seconds a cached view may be stale: the store changes nightly, logins append


@dataclass(frozen=True)
class Settings:
    db_url: str
    users_file: Path
    policy_path: str | None
    tz_name: str
    archive_root: Path
    export_dir: Path
    night: tuple[time, time]

    @property
    def session_key_file(self) -> Path:
        """The key that signs session cookies, beside the users file (owner-only)."""
        return self.users_file.with_name(self.users_file.name + ".session-key")


def _night(text: str | None) -> tuple[time, time]:
    try:
        return parse_night(text)
    except MedsleepError:
        fail(f"MEDSLEEP_NIGHT must look like 22:00-07:00, got {text!r}.")


def settings() -> Settings:
    policy_path = os.environ.get("MEDSLEEP_POLICY") or None
    try:
        tz_name = os.environ.get("MEDSLEEP_DASHBOARD_TZ") or _policy(policy_path).timezone
    except MedsleepError as exc:
        fail(f"Cannot load the policy: {exc}")
    return Settings(
        db_url=os.environ.get("MEDSLEEP_DB") or DEFAULT_DB_URL,
        users_file=Path(os.environ.get("MEDSLEEP_USERS") or DEFAULT_USERS_FILE),
        policy_path=policy_path,
        tz_name=tz_name,
        archive_root=Path(os.environ.get("MEDSLEEP_ARCHIVE") or DEFAULT_ARCHIVE),
        export_dir=Path(os.environ.get("MEDSLEEP_EXPORT_DIR") or DEFAULT_EXPORT_DIR),
        night=_night(os.environ.get("MEDSLEEP_NIGHT")),
    )


def fail(message: str) -> NoReturn:
    st.error(message)
    st.stop()


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    # Events the dashboard appends (logins, views, reviews, holds) are keyed like the CLI's.
    return keyed_engine(open_store(url), audit_key_from(os.environ))


@st.cache_resource(show_spinner=False)
def _policy(path: str | None) -> Policy:
    return load_policy(Path(path) if path else None)


def engine() -> Engine:
    try:
        return _engine(settings().db_url)
    except MedsleepError as exc:
        fail(f"Cannot open the store: {exc}")


def store(actor: str) -> Store:
    """The store as the archive verbs take it, acting as the logged-in user."""
    return Store(engine(), settings().archive_root, actor=actor)


def policy() -> Policy:
    return _policy(settings().policy_path)  # settings() has loaded it, or stopped the page


def tz() -> ZoneInfo:
    name = settings().tz_name
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"Unknown time zone {name!r} (MEDSLEEP_DASHBOARD_TZ or the policy's timezone).")


def when(ms: int | None, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """Local time for people; UTC goes in tooltips and tables next to it."""
    return "—" if ms is None else local_time(int(ms), tz(), fmt)


def local_date(ms: int) -> date:
    return ms_to_datetime(ms).astimezone(tz()).date()


def local_midnight(day: date) -> int:
    return to_ms(datetime.combine(day, time.min, tzinfo=tz()))


def when_utc(ms: int | None) -> str:
    return "—" if ms is None else utc_text(int(ms))


def audit_table(events: Any) -> Any:
    """Audit events for a table: local time instead of epoch ms."""
    table = events.assign(at=events["at_ms"].map(when))
    return table[["seq", "at", "actor", "action", "details", "hash"]]


def users() -> dict[str, User]:
    try:
        return load_users(settings().users_file)
    except MedsleepError as exc:
        fail(str(exc))


def current_user() -> SessionUser | None:
    """The session's user, checked against the users file on every run: a removed user's
    session ends here, a changed role applies at once. The session keeps name and role only."""
    session = st.session_state.get("user")
    if not isinstance(session, SessionUser):
        st.session_state.pop("user", None)
        return None
    fresh = recheck_session(users(), session)
    if fresh is None:
        for key in ("user", "export_report"):
            st.session_state.pop(key, None)
        st.session_state["session_ended"] = session.name
        return None
    if fresh != session:
        st.session_state["user"] = fresh
    return fresh


def require(page: str) -> SessionUser:
    """The logged-in user, when their role has ``page``; otherwise stop the page here."""
    user = current_user()
    if user is None:
        fail("Log in first.")
    if page not in user.pages:
        fail(f"The {user.role} role does not include this page.")
    return user


# Cached views: keyed by plain values (URL, ids, times) so Streamlit can hash them.


@st.cache_data(ttl=TTL, show_spinner=False)
def overview(url: str) -> read.StoreOverview:
    return read.store_overview(_engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def compression(url: str) -> Any:
    return read.compression_by_day(_engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def runs(url: str, limit: int = 50) -> Any:
    return read.recent_runs(_engine(url), limit)


@st.cache_data(ttl=TTL, show_spinner=False)
def reasons(url: str) -> Any:
    return read.reasons_breakdown(_engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def retained_by_kind(url: str) -> dict[str, int]:
    return read.retained_by_kind(_engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def run_detail(url: str, run_id: int) -> read.RunDetail | None:
    return read.run_detail(_engine(url), run_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def quarantine(url: str, search: str) -> tuple[int, Any]:
    return read.quarantine_entries(_engine(url), 500, search)


@st.cache_data(ttl=TTL, show_spinner="Verifying the audit chain…")
def chain_status(url: str) -> Any:
    return read.audit_chain_status(_engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def audit(
    url: str, prefix: str = "", limit: int = 200, actor: str = "", text: str = "",
    since_ms: int | None = None, until_ms: int | None = None,
) -> Any:  # fmt: skip
    return read.recent_audit(_engine(url), limit, prefix, actor=actor, text=text,
                             since_ms=since_ms, until_ms=until_ms)  # fmt: skip


@st.cache_data(ttl=TTL, show_spinner=False)
def audit_actions(url: str) -> list[str]:
    return read.audit_actions(_engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def newest(url: str) -> int | None:
    return read.newest_data_ms(_engine(url))


@st.cache_data(ttl=TTL, show_spinner="Scoring the night…")
def night_digest(
    url: str, policy_path: str | None, tz_name: str, since_ms: int, until_ms: int, live: bool
) -> tuple[read.NightDigest, read.DigestSource]:
    """The digest prepared during consolidation while it is current, else scored now."""
    return read.current_digest(
        _engine(url), _policy(policy_path), ZoneInfo(tz_name), since_ms, until_ms,
        now_ms=wall_clock_ms(), in_progress=live,
    )  # fmt: skip


@st.cache_data(ttl=TTL, show_spinner=False)
def patient_header(url: str, patient: str) -> read.PatientHeader:
    with _engine(url).connect() as conn:
        return read.patient_header(conn, patient)


@st.cache_data(ttl=TTL, show_spinner=False)
def patients(url: str, search: str) -> list[str]:
    return read.list_patients(_engine(url), search)


@st.cache_data(ttl=TTL, show_spinner=False)
def patient_span(url: str, patient: str) -> tuple[int, int] | None:
    return read.patient_span(_engine(url), patient)


@st.cache_data(ttl=TTL, show_spinner="Loading the patient…", max_entries=64)
def patient_view(
    url: str, policy_path: str | None, tz_name: str, patient: str, since_ms: int, until_ms: int
) -> read.PatientView:
    return read.patient_view(
        _engine(url), _policy(policy_path), patient, since_ms, until_ms, ZoneInfo(tz_name)
    )


RANGES = {"12 h": 12, "24 h": 24, "3 days": 72, "7 days": 168, "30 days": 720, "All": None}


def time_range(span: tuple[int, int], choice: str) -> tuple[int, int]:
    """[since, until) of a preset range ending at the patient's newest data (not at now: the
    newest data may be days old)."""
    first, last = span
    until = last + 1
    hours = RANGES.get(choice)
    return (first, until) if hours is None else (max(first, until - hours * 3_600_000), until)
