"""Quarantine: every rejected input with where it came from and why."""

from __future__ import annotations

import streamlit as st
import ui_common as ui

ui.require("quarantine")
s = ui.settings()
st.title("Quarantine")
search = st.text_input("Filter by source or error", key="quarantine_search")
total, entries = ui.quarantine(s.db_url, search)
st.metric("Rejected inputs", f"{total:,}")
if total == 0:
    st.success("Nothing quarantined: every input so far was accepted.")
    st.stop()
if entries.empty:
    st.info(f"No quarantined input matches {search!r}.")
    st.stop()
shown = entries.assign(at=entries["at_ms"].map(ui.when))
st.dataframe(
    shown[["id", "at", "source", "position", "error", "batch_id"]],
    hide_index=True,
    column_config={"error": st.column_config.TextColumn("error", width="large")},
)
if len(entries) < total:
    st.caption(f"Showing the newest {len(entries):,} of {total:,}.")
picked = st.selectbox("Show the raw input of", entries["id"].tolist(), key="raw_id")
raw = str(entries.loc[entries["id"] == picked, "raw"].iloc[0])
st.code(raw[:20_000] + ("\n… (cut)" if len(raw) > 20_000 else ""), language="json")
