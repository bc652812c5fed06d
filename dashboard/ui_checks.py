"""Compliance: the checks made before anything is forgotten — the last dry run and the last
evaluation recorded on this store (audit events; see ``medsleep.read.checks``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import ui_common as ui

from medsleep import read


def _dry_run(check: read.RecordedCheck) -> None:
    r = check.report
    st.caption(
        f"{ui.when(check.at_ms)} by {check.actor}, window before {ui.when_utc(r['until_ms'])}, "
        f"policy {str(r['policy'])[:12]}…"
    )
    cols = st.columns(5)
    cols[0].metric("Readings in", f"{r['readings_in']:,}")
    cols[1].metric("Would retain", f"{r['retained']:,}")
    cols[2].metric("Would collapse", f"{r['collapsed']:,}")
    cols[3].metric("Summaries", f"{r['summaries']:,}")
    cols[4].metric("Compression", f"{r['compression']:.1f}×")
    reasons = pd.DataFrame(list(r["by_reason"].items()), columns=["kept for", "readings"])
    order = ["patient", "readings_in", "retained", "collapsed", "summaries", "compression",
             "archived", "episodes", "sparse", "held"]  # fmt: skip
    patients = pd.DataFrame(r["patients"], columns=order)
    left, right = st.columns([1, 2])
    left.dataframe(reasons, hide_index=True, key="dry_run_reasons")
    right.dataframe(patients, hide_index=True, key="dry_run_patients")


def _evaluation(check: read.RecordedCheck) -> None:
    r: dict[str, Any] = check.report
    st.caption(
        f"{ui.when(check.at_ms)} by {check.actor}: {r['readings']:,} readings of "
        f"{', '.join(r['inputs'])} against {r['labels']} ({r['labels_kind']}), "
        f"policy {str(r['policy'])[:12]}…"
    )
    keep = ["method", "setting", "compression", "recall", "labelled_kept", "labelled",
            "event_recall", "reading_recall", "precision"]  # fmt: skip
    table = pd.DataFrame(r["methods"])
    st.dataframe(table[[c for c in keep if c in table]], hide_index=True, key="evaluation")


def show(engine: Any) -> None:
    st.subheader("Before anything is forgotten")
    dry_run = read.last_dry_run(engine)
    if dry_run is None:
        st.info("No dry run recorded yet: `medsleep consolidate --dry-run` shows what a night "
                "would keep and forget, changing nothing.")  # fmt: skip
    else:
        st.markdown("**Last dry run**")
        _dry_run(dry_run)
    evaluation = read.last_evaluation(engine)
    if evaluation is None:
        st.info("No evaluation recorded yet: `medsleep evaluate INPUT --labels FILE --db URL` "
                "scores the policy on labelled data beside three simpler methods.")  # fmt: skip
    else:
        st.markdown("**Last evaluation**")
        _evaluation(evaluation)
