"""Legal holds: patients whose raw readings are never collapsed — list, add, release, audited."""

from __future__ import annotations

import streamlit as st
import ui_common as ui
from sqlalchemy.exc import SQLAlchemyError

from medsleep.archive import add_hold, list_holds, release_hold
from medsleep.errors import MedsleepError
from medsleep.timefmt import parse_iso_ms

user = ui.require("holds")
st.title("Legal holds")
st.caption(
    "A held patient's readings stay raw (nothing is collapsed or purged); the Morning digest "
    f"and the Patient page say so. Every change is audited as **{user.name}**."
)


def change(action: str, patient: str, reason: str = "") -> None:
    try:
        if action == "add":
            add_hold(ui.store(user.name), patient, reason)
        else:
            release_hold(ui.store(user.name), patient)
    except (MedsleepError, SQLAlchemyError) as exc:
        ui.fail(f"Cannot {action} the hold: {exc}")
    st.cache_data.clear()  # digest, patient views and the audit tables change
    st.rerun()


holds = list_holds(ui.engine())
if holds:  # the display time zone, as everywhere else (list_holds says UTC)
    shown = [{**h, "since": ui.when(parse_iso_ms(h["since"]))} for h in holds]
    st.dataframe(shown, hide_index=True, key="holds_table")
else:
    st.info("No patient is on legal hold.")

left, right = st.columns(2)
with left.form("hold_add", clear_on_submit=True):
    st.subheader("Add a hold")
    patient = st.selectbox("Patient", ui.patients(ui.settings().db_url, ""), index=None,
                           accept_new_options=True, key="hold_patient")  # fmt: skip
    reason = st.text_input("Why (case, request)", key="hold_reason")
    if st.form_submit_button("Add hold", key="hold_add_submit"):
        if not patient or not reason.strip():
            st.error("A hold needs a patient and a reason.")
        else:
            change("add", patient, reason.strip())
with right.form("hold_release"):
    st.subheader("Release a hold")
    held = [h["patient"] for h in holds]
    which = st.selectbox("Patient", held, index=None, key="release_patient")
    released = st.form_submit_button("Release hold", key="hold_release_submit", disabled=not held)
    if released and which:
        change("release", which)
