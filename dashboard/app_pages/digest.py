"""Morning digest: last night, one row per patient, highest NEWS2 risk first."""

from __future__ import annotations

import streamlit as st
import ui_common as ui
import ui_digest

user = ui.require("digest")
s, tz, policy = ui.settings(), ui.tz(), ui.policy()
st.title("Morning digest")
if ui.overview(s.db_url).empty:
    st.info(ui.NO_READINGS)
    st.stop()

since, until, live, window = ui_digest.pick_night(
    tz, s.night, (policy.quiet_start, policy.quiet_end)
)
digest = ui.night_digest(s.db_url, s.policy_path, s.tz_name, since, until, live)
ui_digest.caption(digest)
if not digest.rows:
    st.info("No readings in this night window — pick another night.")
    st.stop()
ui_digest.table(digest, tz)
for row in digest.rows:
    ui_digest.card(row, tz, user, (digest.since_ms, digest.until_ms))
