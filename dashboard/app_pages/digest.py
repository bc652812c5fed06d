"""Morning digest: last night's patients, worst NEWS2 first, with their episodes."""

from __future__ import annotations

import streamlit as st
import ui_common as ui

ui.require("digest")
s = ui.settings()
st.title("Morning digest")
if ui.overview(s.db_url).empty:
    st.info(ui.NO_READINGS)
    st.stop()
run_ids = ui.digest_runs(s.db_url)
if not run_ids:
    st.info(ui.NO_RUNS)
    st.stop()

left, right = st.columns(2)
run_id = left.selectbox("Consolidation run", run_ids, format_func=lambda r: f"run {r}", key="run")
hours = right.segmented_control("Night", [12, 24, 48], default=24, format_func=lambda h: f"{h} h")
digest = ui.digest(s.db_url, s.policy_path, s.tz_name, run_id, float(hours or 24))
st.caption(
    f"Episodes run {digest.run_id} found between {ui.when(digest.since_ms)} and "
    f"{ui.when(digest.until_ms)}, patients ranked by their peak NEWS2 aggregate."
)
if not digest.patients:
    st.success("No episodes in this window: every patient's night was unremarkable.")
for rank, patient in enumerate(digest.patients, start=1):
    with st.container(border=True):
        name, score, action = st.columns([3, 1, 1], vertical_alignment="center")
        name.subheader(f"{rank}. {patient.patient}")
        score.metric("peak NEWS2", patient.peak_news2)
        if action.button("Open patient", key=f"open-{patient.patient}"):
            st.session_state["patient"] = patient.patient
            st.switch_page("app_pages/patient.py")
        st.markdown("\n".join(f"- {line}" for line in patient.episodes))
if digest.quiet_patients:
    st.caption(f"{digest.quiet_patients} more patients consolidated with no episode.")
