"""Collapsed stretches: for a patient and a period, each archive file behind what was
collapsed (run, policy, sha256), verified on request and restorable with a reason — audited."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
import ui_common as ui
from sqlalchemy.exc import SQLAlchemyError

from medsleep import read
from medsleep.archive import restore
from medsleep.errors import MedsleepError
from medsleep.timefmt import wall_clock_ms

user = ui.require("archive")
s, tz = ui.settings(), ui.tz()
st.title("Collapsed stretches")
patients = ui.patients(s.db_url, "")
if not patients:
    st.info(ui.NO_READINGS)
    st.stop()
who, days = st.columns([1, 2])
patient = who.selectbox("Patient", patients, key="stretch_patient")
span = ui.patient_span(s.db_url, patient)
first, last = (ui.local_date(ms) for ms in span) if span else (None, None)
picked = days.date_input("Days (local, both included)", value=(first, last), key="stretch_days")
since = ui.local_midnight(picked[0]) if picked else None
until = ui.local_midnight(picked[-1] + timedelta(days=1)) if picked else None
files = read.collapsed_stretches(ui.engine(), patient, since, until)
if files.empty:
    st.info(f"Nothing of {patient} was collapsed in this period: every reading is still hot.")
    st.stop()
table = files.assign(
    **{"from": files["first_ms"].map(ui.when), "to": files["last_ms"].map(ui.when)}
)[["file", "from", "to", "codes", "summaries", "readings", "run_id", "policy_digest",
   "sha256", "rows", "state"]]  # fmt: skip
st.dataframe(table, hide_index=True, key="stretch_table")
readings, summaries = int(files["readings"].sum()), int(files["summaries"].sum())
st.caption(f"{readings:,} readings collapsed into {summaries:,} summaries, in {len(files)} files.")

name = st.selectbox("Archive file", list(files["file"]), key="stretch_file")
if st.button("Verify this file", key="stretch_verify"):
    check = read.verify_file(ui.engine(), s.archive_root, name, by=user.name,
                             now_ms=wall_clock_ms())  # fmt: skip
    st.session_state["stretch_check"] = check
if (check := st.session_state.get("stretch_check")) is not None and check.name == name:
    (st.success if check.ok else st.error)(
        f"{name}: sha256 and row count match its record." if check.ok else check.problem
    )
with st.form("stretch_restore"):
    reason = st.text_input("Reason for restoring (audited)", key="restore_reason")
    go = st.form_submit_button("Restore this patient's readings in the period",
                               key="stretch_restore_submit")  # fmt: skip
if go:
    if not reason.strip():
        ui.fail("A restore needs a reason.")
    try:
        done = restore(ui.store(user.name), patient=patient, since_ms=since, until_ms=until,
                       reason=reason.strip())  # fmt: skip
    except (MedsleepError, SQLAlchemyError) as exc:
        ui.fail(f"Cannot restore: {exc}")
    st.cache_data.clear()
    st.success(f"Restored {done.readings:,} readings from {len(done.files)} files; "
               f"{done.summaries:,} summaries superseded.")  # fmt: skip
