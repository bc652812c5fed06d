"""Runs: every consolidation, and one run in detail (policy, counts, files, audit)."""

from __future__ import annotations

import json

import streamlit as st
import ui_common as ui

ui.require("runs")
s = ui.settings()
st.title("Consolidation runs")
runs = ui.runs(s.db_url, 200)
if runs.empty:
    st.info(ui.NO_RUNS)
    st.stop()

table = runs.assign(
    started=runs["started_ms"].map(ui.when), finished=runs["finished_ms"].map(ui.when)
)
first = ["id", "started", "finished", "status", "seconds"]
st.dataframe(
    table[first + [c for c in runs.columns if c not in (*first, "started_ms", "finished_ms")]],
    hide_index=True,
    column_config={"seconds": st.column_config.NumberColumn("duration (s)", format="%.1f")},
)

run_id = st.selectbox("Run detail", runs["id"].tolist(), format_func=lambda r: f"run {r}")
detail = ui.run_detail(s.db_url, int(run_id))
if detail is None:
    st.warning(f"Run {run_id} is gone.")
    st.stop()
run, counts = detail.run, detail.counts
st.subheader(f"Run {run_id}: {run['status']}")
cols = st.columns(5)
cols[0].metric("Readings in", f"{counts.get('readings_in', 0):,}")
cols[1].metric("Retained", f"{counts.get('retained', 0):,}")
cols[2].metric("Collapsed", f"{counts.get('collapsed', 0):,}")
cols[3].metric("Summaries", f"{counts.get('summaries', 0):,}")
cols[4].metric("Patients (shards)", f"{run['shards_done']}/{run['shards_total']}")
st.markdown(
    f"Started {ui.when(run['started_ms'])} ({ui.when_utc(run['started_ms'])}), finished "
    f"{ui.when(run['finished_ms'])}; consolidated readings before {ui.when(run['until_ms'])}; "
    f"executor `{run['executor']}`; {detail.episodes:,} episodes."
)
if run.get("error"):
    st.error(run["error"])
st.markdown(f"Policy sha256 `{run['policy_digest']}`")
with st.expander("Policy used"):
    st.json(detail.policy, expanded=False)
with st.expander("Counts and timings"):
    st.code(json.dumps(counts, indent=2), language="json")

st.subheader("Archive files")
if detail.archive_files.empty:
    st.info("This run archived nothing.")
else:
    files = detail.archive_files.assign(created=detail.archive_files["created_ms"].map(ui.when))
    st.dataframe(files.drop(columns=["created_ms"]), hide_index=True)

st.subheader("Audit entries")
if detail.audit.empty:
    st.info("No audit entries name this run.")
else:
    st.dataframe(ui.audit_table(detail.audit), hide_index=True)
if not detail.reasons.empty:
    st.subheader("Why this run retained readings")
    st.dataframe(detail.reasons, hide_index=True)
