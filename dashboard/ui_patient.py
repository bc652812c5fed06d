"""The Patient page's pieces: the time range (presets or custom days), the audit of who viewed
which patient, the charts (built once per view), and the table of retained readings in plain
words."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import streamlit as st
import ui_charts
import ui_common as ui
from sqlalchemy.exc import SQLAlchemyError

from medsleep import read
from medsleep.auth.users import SessionUser
from medsleep.errors import MedsleepError
from medsleep.policy import Policy
from medsleep.read.text import display_unit, vital_name
from medsleep.timefmt import ms_to_datetime, to_ms, wall_clock_ms

CUSTOM = "Custom"
KIND_WORDS = {
    "rule": "clinical rule",
    "detector": "unusual for this patient (detector)",
    "artifact": "probable sensor artifact",
    "context": "context of a kept reading",
    "sparse": "too few readings to summarise: kept raw",
}


class Charts(NamedTuple):
    news2: ui_charts.Spec | None  # None with fewer than two NEWS2 parameters
    vitals: list[tuple[str, ui_charts.Spec]]  # (code, spec), the first with the legend


@st.cache_data(ttl=ui.TTL, show_spinner=False, max_entries=64)
def charts(
    url: str, policy_path: str | None, tz_name: str, patient: str, since_ms: int, until_ms: int
) -> Charts:
    """The page's chart specs, cached like the view they draw: building them is pandas work
    (times as text, tooltips) that a second viewer need not wait for."""
    view = ui.patient_view(url, policy_path, tz_name, patient, since_ms, until_ms)
    policy, tz = ui._policy(policy_path), ZoneInfo(tz_name)
    news2 = ui_charts.news2_chart(view, tz, tz_name) if len(view.news2_parameters) >= 2 else None
    vitals = [
        (code, ui_charts.vital_chart(view, code, policy, tz, tz_name, legend=i == 0))
        for i, code in enumerate(view.codes)
    ]
    return Charts(news2, vitals)


def pick_range(span: tuple[int, int], tz: ZoneInfo) -> tuple[int, int]:
    """[since, until): a preset ending at the patient's newest data, or custom local days."""
    choice = st.segmented_control("Time range", [*ui.RANGES, CUSTOM], default="24 h", key="range")
    if choice != CUSTOM:
        return ui.time_range(span, choice or "24 h")
    first, last = (ms_to_datetime(ms).astimezone(tz).date() for ms in span)
    days = st.date_input("Days (local)", value=(max(first, last - timedelta(days=1)), last),
                         min_value=first, max_value=last, key="custom_days")  # fmt: skip
    start, end = (days[0], days[-1]) if isinstance(days, tuple) and days else (last, last)
    return _midnight(start, tz), _midnight(end + timedelta(days=1), tz)


def _midnight(day: date, tz: ZoneInfo) -> int:
    return to_ms(datetime.combine(day, time.min, tzinfo=tz))


def audit_view(user: SessionUser, patient: str, since: int, until: int) -> None:
    """Audit ``dashboard.view_patient`` once per session, patient and range: who looked at
    whose readings, when. No audit entry, no data."""
    seen: set[tuple[str, int, int]] = st.session_state.setdefault("viewed", set())
    if (patient, since, until) in seen:
        return
    try:
        read.record_patient_view(
            ui.engine(), patient=patient, by=user.name, now_ms=wall_clock_ms(),
            since_ms=since, until_ms=until,
        )  # fmt: skip
    except (MedsleepError, SQLAlchemyError) as exc:
        ui.fail(f"Cannot record this view in the audit log: {exc}")
    seen.add((patient, since, until))


def retained_table(view: read.PatientView, policy: Policy, tz: ZoneInfo) -> None:
    if view.retained.empty:
        st.info("No retained readings in this time range.")
        return
    table = ui_charts.with_times(view.retained, tz, "t_ms").rename(
        columns={"t_ms_local": "time", "t_ms_utc": "UTC", "run_id": "run", "id": "reading"}
    )
    table["vital"] = table["code"].map({c: vital_name(c, policy) for c in view.codes})
    table["unit"] = table["unit"].map(display_unit)
    table["kept because"] = table["kind"].map(KIND_WORDS)
    st.dataframe(
        table[["time", "vital", "value", "unit", "kept because", "why", "run", "reading", "UTC"]],
        hide_index=True,
        key="why_table",
        column_config={"why": st.column_config.TextColumn("why", width="large")},
    )
    if view.retained_total > len(view.retained):
        st.caption(f"Showing the {len(view.retained):,} strongest of {view.retained_total:,}.")
