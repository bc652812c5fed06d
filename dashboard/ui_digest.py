"""The morning digest's pieces: which night, the one-row-per-patient table with the RCP NEWS2
colour bands, each patient's card (serious episodes, minor ones folded, reviews) and the
review form, audited as the logged-in user."""

from __future__ import annotations

from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
import ui_common as ui
from sqlalchemy.exc import SQLAlchemyError

from medsleep.auth.users import SessionUser
from medsleep.errors import MedsleepError
from medsleep.export.night_report import night_report_pdf
from medsleep.read.digest import DigestRow, NightDigest, night_ending, night_window
from medsleep.read.prepared import DigestSource
from medsleep.read.reviews import add_review
from medsleep.read.text import local_time
from medsleep.timefmt import ms_to_datetime, wall_clock_ms

# RCP NEWS2 clinical risk, in Okabe–Ito colours (colour-blind safe); the label says it too.
BAND_LABELS = {
    "high": "■ high (≥ 7)",
    "medium": "◆ medium (5–6)",
    "low-medium": "▲ 3 in one parameter",
    "low": "○ low (0–4)",
    "none": "— not assessed",
}
BAND_COLOURS = {"high": "#D55E00", "medium": "#E69F00", "low-medium": "#F0E442", "low": "",
                "none": ""}  # fmt: skip
DAY_TIME = "%a %d %b %H:%M %Z"
STATUS = {
    "assessed": "consolidated",
    "provisional": "provisional: not consolidated yet",
    "held": "legal hold: scored from raw readings",
    "not-assessed": "not assessed: no readings in this night window",
}


def pick_night(tz: ZoneInfo, night: tuple[time, time], quiet: tuple[time, time]) -> tuple[
    int, int, bool, str
]:  # fmt: skip
    """The night the user picked: (since, until, in progress, the window's words). The default
    is the real last night, or the last night with data when the store's newest reading is
    older (say so)."""
    now = wall_clock_ms()
    newest = ui.newest(ui.settings().db_url)
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    windows = {f"{night[0]:%H:%M}–{night[1]:%H:%M}": night,
               f"{quiet[0]:%H:%M}–{quiet[1]:%H:%M} (policy quiet hours)": quiet}  # fmt: skip
    label = right.segmented_control("Night window", list(windows), default=list(windows)[0],
                                    key="night_window")  # fmt: skip
    window = windows.get(label or "", night)
    _, real_end, _ = night_window(now, tz, window)
    anchor = min(now, newest) if newest is not None else now
    _, end, _ = night_window(anchor, tz, window)
    default = ms_to_datetime(max(end - 1, 0)).astimezone(tz).date()
    day: date = left.date_input("Night ending on", value=default, key="night_day")
    since, until = night_ending(day, tz, window)
    live = until > now
    if end < real_end and newest is not None:
        st.warning(
            f"No readings for the real last night yet: the newest reading is from "
            f"{ui.when(newest)}. Showing the last night with data."
        )
    return since, min(until, now), live, label or ""


def caption(digest: NightDigest, source: DigestSource) -> None:
    held = sum(r.status == "held" for r in digest.rows)
    provisional = sum(r.status == "provisional" for r in digest.rows)
    absent = sum(r.status == "not-assessed" for r in digest.rows)
    start, end = ui.when(digest.since_ms, "%a %d %b %H:%M"), ui.when(digest.until_ms, DAY_TIME)
    made = ui.when(source.computed_ms, "%d %b %H:%M")
    origin = (f"prepared {made} (no reading of the night changed since)" if source.prepared
              else f"scored now ({source.reason})")  # fmt: skip
    st.caption(
        f"{start} – {end}"
        f"{' (in progress)' if digest.in_progress else ''} · {len(digest.rows)} patients, "
        f"highest risk first · {provisional} provisional, {held} on legal hold, {absent} not "
        f"assessed · {origin} · readings kept as artifacts never count toward episodes or NEWS2."
    )


def _row(r: DigestRow, tz: ZoneInfo) -> dict[str, Any]:
    reviewed = [x for x in r.reviews if x.episode_start_ms is None]
    return {
        "risk": BAND_LABELS[r.band],
        "patient": r.patient,
        "name": r.header.details if r.header is not None else "—",
        "peak NEWS2": r.peak_news2,
        "peak at": "—" if r.peak_ms is None else local_time(r.peak_ms, tz, "%d %b %H:%M"),
        "worst values": ", ".join(r.worst) or "normal",
        "serious": len(r.serious),
        "minor": len(r.minor),
        "status": STATUS[r.status],
        "reviewed": ", ".join(sorted({x.reviewer for x in reviewed})) or "—",
    }


def table(digest: NightDigest, tz: ZoneInfo) -> None:
    frame = pd.DataFrame([_row(r, tz) for r in digest.rows])
    bands = [r.band for r in digest.rows]

    def colour(column: pd.Series) -> list[str]:
        return [f"background-color: {BAND_COLOURS[b]}" if BAND_COLOURS[b] else "" for b in bands]

    styled = frame.style.apply(colour, subset=["risk", "peak NEWS2"])
    st.dataframe(styled, hide_index=True, key="digest_table", width="stretch")


def open_patient(patient: str) -> None:
    """The button's callback: it runs before the next script run, whose first lines switch to
    the Patient page (``switch_if_opening``), so the digest is not drawn again on the way."""
    st.session_state["patient"] = patient
    st.session_state["opening_patient"] = True


def switch_if_opening() -> None:
    if st.session_state.pop("opening_patient", False):
        st.switch_page("app_pages/patient.py")


def card(r: DigestRow, tz: ZoneInfo, user: SessionUser, night: tuple[int, int]) -> None:
    with st.container(border=True):
        head, action = st.columns([5, 1], vertical_alignment="center")
        when = "" if r.peak_ms is None else f" at {local_time(r.peak_ms, tz, '%H:%M')}"
        details = f" {r.header.details} ·" if r.header is not None and r.header.details else ""
        head.markdown(f"**{r.patient}** ·{details} {BAND_LABELS[r.band]} · peak NEWS2 "
                      f"**{r.peak_news2}**{when} · {STATUS[r.status]}")  # fmt: skip
        action.button("Open patient", key=f"open-{r.patient}", on_click=open_patient,
                      args=(r.patient,))  # fmt: skip
        lines = [f"- {e.text}{' · provisional' if e.provisional else ''}" for e in r.serious]
        st.markdown("\n".join(lines) or "No serious episode.")
        if r.minor:
            with st.expander(f"{len(r.minor)} minor episodes (NEWS2 below 5, no parameter at 3)"):
                st.markdown("\n".join(f"- {e.text}" for e in r.minor))
        for mark in r.reviews:
            what = "night" if mark.episode_start_ms is None else (
                f"episode at {local_time(mark.episode_start_ms, tz, '%H:%M')}")  # fmt: skip
            note = f": “{mark.comment}”" if mark.comment else ""
            st.caption(f"✓ {what} reviewed by {mark.reviewer}, "
                       f"{local_time(mark.created_ms, tz, '%d %b %H:%M')}{note}")  # fmt: skip
        review, report = st.columns([1, 5])
        with review:
            _review_form(r, tz, user, night)
        with report:
            _report_button(r, tz, user, night)


def _report_button(r: DigestRow, tz: ZoneInfo, user: SessionUser, night: tuple[int, int]) -> None:
    """Make the night's PDF on request (audited), then offer it for download."""
    key = f"report-{r.patient}-{night[0]}"
    if st.button("Night report (PDF)", key=f"make-{key}"):
        try:
            st.session_state[key] = night_report_pdf(
                ui.engine(), ui.policy(), tz, r.patient, night, by=user.name, now_ms=wall_clock_ms()
            )
        except (MedsleepError, SQLAlchemyError) as exc:
            st.error(f"Cannot make the report: {exc}")
    if (data := st.session_state.get(key)) is not None:
        st.download_button("Download PDF", data, file_name=f"night-{r.patient}.pdf",
                           mime="application/pdf", key=f"get-{key}")  # fmt: skip


def _review_form(r: DigestRow, tz: ZoneInfo, user: SessionUser, night: tuple[int, int]) -> None:
    with st.popover("Mark reviewed"), st.form(f"review-{r.patient}", clear_on_submit=True):
        choices: dict[str, int | None] = {"the whole night": None}
        choices.update({e.text: e.start_ms for e in r.serious})
        what = st.selectbox("What", list(choices), key=f"review-what-{r.patient}")
        comment = st.text_input("Comment (optional)", key=f"review-comment-{r.patient}")
        if st.form_submit_button("Mark reviewed", key=f"review-submit-{r.patient}"):
            try:
                add_review(ui.engine(), patient=r.patient, night=night, by=user.name,
                           now_ms=wall_clock_ms(), episode_start_ms=choices[what],
                           comment=comment)  # fmt: skip
            except (MedsleepError, SQLAlchemyError) as exc:
                st.error(f"Cannot record the review: {exc}")
                return
            ui.night_digest.clear()
            st.rerun()
