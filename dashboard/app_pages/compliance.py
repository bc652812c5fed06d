"""Compliance: is the audit chain intact, who logged in, what happened."""

from __future__ import annotations

import streamlit as st
import ui_checks
import ui_common as ui
import ui_export

from medsleep.export.job import FORMATS

user = ui.require("compliance")
s = ui.settings()
st.title("Compliance")

st.subheader("Audit chain")
if st.button("Verify again", key="verify"):
    ui.chain_status.clear()
status = ui.chain_status(s.db_url)
if status.events == 0:
    st.info("The audit log is empty — it starts with the first ingest or consolidation.")
elif status.ok:
    st.success(f"Verified: all {status.events:,} entries link and match their hashes.")
else:
    st.error(f"Broken at entry {status.broken_at}: {status.problem}.")
    st.caption("Entries from there on cannot be trusted; run `medsleep audit verify` and escalate.")

ui_checks.show(ui.engine())

st.subheader("Dashboard logins")
logins = ui.audit(s.db_url, "dashboard.", 200)
if logins.empty:
    st.info("No dashboard logins recorded yet.")
else:
    failed = int((logins["action"] == "dashboard.login_failed").sum())
    st.caption(f"{failed} failed of the last {len(logins)} login attempts.")
    st.dataframe(ui.audit_table(logins).drop(columns=["hash"]), hide_index=True)

st.subheader("Audit entries")
f = st.columns(4)
action = f[0].selectbox("Action", ui.audit_actions(s.db_url), index=None, key="audit_action",
                        placeholder="any")  # fmt: skip
actor = f[1].text_input("Who", key="audit_actor")
text = f[2].text_input("Details contain (patient, file)", key="audit_text")
day = f[3].date_input("Day", value=None, key="audit_day")
window = (ui.local_midnight(day), ui.local_midnight(day) + 86_400_000) if day else (None, None)
events = ui.audit(s.db_url, action or "", 500, actor.strip(), text.strip(), *window)
st.caption(f"{len(events)} entries (newest first, at most 500).")
if not events.empty:
    st.dataframe(ui.audit_table(events), hide_index=True, key="audit_table")

st.subheader("Export")
st.caption(
    f"FHIR Bulk NDJSON, CSV or Parquet with a manifest of counts and sha256, written to a new "
    f"folder under `{s.export_dir.resolve()}` and audited as **{user.name}**. Days are in "
    f"{s.tz_name}."
)
with st.form("export"):
    fmt = st.radio("Format", FORMATS, horizontal=True, key="export_format")
    patient = st.selectbox(
        "Patient", ui.patients(s.db_url, ""), index=None, placeholder="All patients",
        accept_new_options=True, key="export_patient",
    )  # fmt: skip
    left, right = st.columns(2)
    first = left.date_input("First day", value=None, key="export_first")
    last = right.date_input("Last day (included)", value=None, key="export_last")
    archived = st.checkbox(
        "Include archived originals", key="export_archived",
        help="Also the original resources of collapsed readings, checked against the archive.",
    )  # fmt: skip
    submitted = st.form_submit_button("Export", type="primary")
if submitted:
    report = ui_export.run(user, fmt, patient, first, last, archived)
    if report is not None:
        st.session_state[ui_export.REPORT_KEY] = report
        ui.audit.clear()  # the new export event belongs in the tables above
        ui.chain_status.clear()
        st.rerun()
if (report := st.session_state.get(ui_export.REPORT_KEY)) is not None:
    ui_export.show(report)
