"""Overview: what the store holds, how much it is compressed, how the runs went."""

from __future__ import annotations

import streamlit as st
import ui_charts
import ui_common as ui

ui.require("overview")
s = ui.settings()
st.title("Overview")
o = ui.overview(s.db_url)
if o.empty:
    st.info(ui.NO_READINGS)
    st.stop()

cols = st.columns(5)
cols[0].metric("Patients monitored", f"{o.patients:,}")
cols[1].metric("Readings in the hot store", f"{o.readings_hot:,}", help="raw + retained")
cols[2].metric("Readings collapsed", f"{o.readings_collapsed:,}", help="into summaries")
cols[3].metric("Readings archived", f"{o.readings_archived:,}", help="Parquet, sha256")
cols[4].metric("Quarantined inputs", f"{o.quarantined:,}")
st.caption(
    f"{o.readings_raw:,} raw and {o.readings_retained:,} retained readings are hot; "
    f"{o.summaries:,} summaries stand for {o.readings_collapsed:,} readings kept in "
    f"{o.archive_files:,} archive files ({o.archive_bytes / 1e6:,.1f} MB)."
)

st.subheader("Compression over time")
compression = ui.compression(s.db_url)
chart = ui_charts.compression_chart(compression, ui.tz(), s.tz_name)
st.vega_lite_chart(spec=chart, width="stretch", height=260)
st.caption("Per UTC day of readings: readings represented ÷ rows kept for them (summaries and "
           "hot readings); bars drawn on the display zone's calendar.")  # fmt: skip

st.subheader("Last runs")
runs = ui.runs(s.db_url, 10)
if runs.empty:
    st.info(ui.NO_RUNS)
else:
    table = runs.assign(started=runs["started_ms"].map(ui.when))
    st.dataframe(
        table[["id", "started", "status", "seconds", "shards_done", "shards_total",
               "readings_in", "retained", "collapsed", "summaries"]],
        hide_index=True,
        column_config={"seconds": st.column_config.NumberColumn("duration (s)", format="%.1f")},
    )  # fmt: skip

st.subheader("Why readings are retained")
reasons = ui.reasons(s.db_url)
if reasons.empty:
    st.info("No retained readings yet.")
else:
    by_kind = ui.retained_by_kind(s.db_url)
    labels = {"rule": "Rules", "detector": "Detectors", "context": "Context"}
    labels["artifact"] = "Artifacts"
    labels["sparse"] = "Too sparse"
    for col, (kind, label) in zip(st.columns(len(labels)), labels.items(), strict=True):
        col.metric(label, f"{by_kind.get(kind, 0):,}", help=f"retained readings kept for {kind}")
    st.caption(
        "A reading can be kept for several reasons (a rule and a detector, or as "
        "context of another), so these counts add up to more than the retained readings."
    )
    height = 80 + 28 * len(reasons)
    st.vega_lite_chart(spec=ui_charts.reasons_chart(reasons), width="stretch", height=height)
