"""Patient: every vital over time — summaries, hot readings, retained readings and why."""

from __future__ import annotations

import streamlit as st
import ui_charts
import ui_common as ui
import ui_patient

from medsleep.read.text import parameter_name, vital_name

user = ui.require("patient")
s, policy, tz = ui.settings(), ui.policy(), ui.tz()
st.title("Patient")
if ui.overview(s.db_url).empty:
    st.info(ui.NO_READINGS)
    st.stop()

wanted = st.session_state.get("patient") or st.query_params.get("patient", "")
search, pick, span_choice = st.columns([1, 1, 2], vertical_alignment="bottom")
needle = search.text_input("Search patient id", key="patient_search")
choices = ui.patients(s.db_url, needle)
if wanted and wanted not in choices and not needle:
    choices = [wanted, *choices]
if not choices:
    st.info(f"No patient id contains {needle!r}.")
    st.stop()
patient = pick.selectbox(
    "Patient", choices, index=choices.index(wanted) if wanted in choices else 0, key="pick"
)
st.session_state["patient"] = patient  # ?patient= is read above, never written: no ids in URLs
st.subheader(ui.patient_header(s.db_url, patient).label)
span = ui.patient_span(s.db_url, patient)
if span is None:
    st.info(f"No readings for {patient} — run `medsleep ingest` for this patient.")
    st.stop()
with span_choice:
    since, until = ui_patient.pick_range(span, tz)
ui_patient.audit_view(user, patient, since, until)
view = ui.patient_view(s.db_url, s.policy_path, s.tz_name, patient, since, until)

st.caption(f"{ui.when(since)} – {ui.when(until)} · times in {s.tz_name}, UTC in tooltips")
if view.on_hold:
    st.warning("Legal hold: this patient's raw readings are never collapsed.")
m = st.columns(4)
m[0].metric("Retained readings", f"{view.retained_total:,}")
m[1].metric("Summarised readings", f"{int(view.bands['n'].sum()):,}")
m[2].metric("Hot (raw) readings", f"{int(view.hot['n'].sum()):,}")
m[3].metric("Episodes", f"{len(view.episodes):,}")
if view.empty:
    st.info("No readings in this time range — pick a longer one.")
    st.stop()
if not view.episodes.empty:
    with st.expander(f"Episodes ({len(view.episodes)})"):
        rows = zip(view.episodes["start_ms"], view.episodes["text"], strict=True)
        st.markdown("\n".join(f"- {ui.when(t, '%d %b')} {text}" for t, text in rows))

charts = ui_patient.charts(s.db_url, s.policy_path, s.tz_name, patient, since, until)
if charts.news2 is not None:
    st.vega_lite_chart(
        spec=charts.news2, width="stretch", height=ui_charts.HEIGHT, alt="NEWS2 over time"
    )
    names = ", ".join(parameter_name(p, policy) for p in view.news2_parameters)
    st.caption(
        f"Lowest–highest possible aggregate per slot from {names}; consciousness and "
        "supplemental oxygen are not recorded, so the true NEWS2 may be higher."
    )
for i, (code, spec) in enumerate(charts.vitals):
    st.vega_lite_chart(
        spec=spec,
        width="stretch",
        height=ui_charts.HEIGHT + (ui_charts.LEGEND_HEIGHT if i == 0 else 0),
        alt=f"{vital_name(code, policy)} over time",
    )
st.caption(
    f"Blue bands: min–max of summarised readings per {view.summary_resolution_ms // 60_000} min "
    f"with their mean; dark bars: min–max of the hot (raw) readings per "
    f"{view.hot_resolution_ms // 60_000} min; points: "
    "retained readings (hover for why); hollow: not consolidated yet, what consolidation "
    "would keep (provisional); crosses along the top: probable sensor artifacts, left out of "
    "the axis and of NEWS2."
    + (
        f" {view.artifact_summaries} sensor-off stretches are not drawn."
        if view.artifact_summaries
        else ""
    )  # fmt: skip
)

st.subheader("Retained readings and why")
ui_patient.retained_table(view, policy, tz)
