"""Compliance: is the audit chain intact, who logged in, what happened."""

from __future__ import annotations

import streamlit as st
import ui_common as ui

ui.require("compliance")
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

st.subheader("Dashboard logins")
logins = ui.audit(s.db_url, "dashboard.", 200)
if logins.empty:
    st.info("No dashboard logins recorded yet.")
else:
    failed = int((logins["action"] == "dashboard.login_failed").sum())
    st.caption(f"{failed} failed of the last {len(logins)} login attempts.")
    st.dataframe(ui.audit_table(logins).drop(columns=["hash"]), hide_index=True)

st.subheader("Recent audit entries")
events = ui.audit(s.db_url, "", 200)
if not events.empty:
    st.dataframe(ui.audit_table(events), hide_index=True)

st.subheader("Export")
st.info(
    "FHIR Bulk export for auditors arrives with the export feature; until then use "
    "`medsleep query readings` and `medsleep audit show --json`."
)
