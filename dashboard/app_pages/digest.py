"""Morning digest: last night, one row per patient, highest NEWS2 risk first; one patient's
details (episodes, reviews, report) below."""

from __future__ import annotations

import streamlit as st
import ui_common as ui
import ui_digest

user = ui.require("digest")
ui_digest.switch_if_opening()
s, tz, policy = ui.settings(), ui.tz(), ui.policy()
st.title("Morning digest")
if ui.overview(s.db_url).empty:
    st.info(ui.NO_READINGS)
    st.stop()

since, until, live, window = ui_digest.pick_night(
    tz, s.night, (policy.quiet_start, policy.quiet_end)
)
digest, source = ui.night_digest(s.db_url, s.policy_path, s.tz_name, since, until, live)
ui_digest.caption(digest, source)
if all(r.status == "not-assessed" for r in digest.rows):
    st.info("No readings in this night window — pick another night.")
if not digest.rows:
    st.stop()
ui_digest.table(digest, tz)
# One patient's card at a time (the worst first): twenty cards with their forms took seconds.
by_patient = {row.patient: row for row in digest.rows}
chosen = st.selectbox("Details for", list(by_patient), key="digest_patient")
ui_digest.card(by_patient[chosen or digest.rows[0].patient], tz, user, (since, until))
