"""Provisional markers for the readings not consolidated yet: what consolidation would keep
and why, decided now with consolidation's own ``classify_patient``, so that a desaturation in
the hot part of a chart is as visible as one in the consolidated part."""

from __future__ import annotations

from datetime import tzinfo

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from medsleep.detect import classify_patient
from medsleep.policy import Policy
from medsleep.read.explain import explain_reason
from medsleep.store.tables import READING, ReadingState

PROVISIONAL_COLUMNS = ("id", "code", "unit", "t_ms", "value", "kind", "why")
MAX_HOT_READINGS = 200_000
"""More hot readings than this (a held patient's months) are not classified on the fly."""


def provisional_readings(
    conn: Connection, policy: Policy, patient: str, since_ms: int, until_ms: int, tz: tzinfo
) -> pd.DataFrame:
    """The raw readings of ``[since_ms, until_ms)`` that consolidation would keep for a rule
    or a detector (artifacts and context left out), with why in plain words."""
    r = READING.c
    rows = conn.execute(
        select(r.id, r.code, r.unit, r.effective_ms, r.value)
        .where(
            r.patient == patient,
            r.state == ReadingState.RAW,
            r.effective_ms >= since_ms,
            r.effective_ms < until_ms,
        )
        .limit(MAX_HOT_READINGS + 1)
    ).all()
    empty = pd.DataFrame({c: [] for c in PROVISIONAL_COLUMNS})
    if not rows or len(rows) > MAX_HOT_READINGS:
        return empty
    frame = pd.DataFrame(rows, columns=["id", "code", "unit", "t", "value"]).astype(
        {"id": np.int64, "t": np.int64, "value": np.float64}
    )
    reasons = classify_patient(frame[["id", "code", "t", "value"]], policy).reasons
    reasons = reasons[reasons["kind"].isin(("rule", "detector"))]
    if reasons.empty:
        return empty
    by_id = {int(row[0]): row for row in rows}
    out = []
    for reading_id, group in reasons.groupby("reading_id", sort=False):
        _, code, unit, t_ms, value = by_id[int(str(reading_id))]
        why = [
            explain_reason(row, code, int(t_ms), float(value), policy, tz)
            for row in group.itertuples()
        ]
        out.append(
            {
                "id": int(str(reading_id)),
                "code": code,
                "unit": unit,
                "t_ms": int(t_ms),
                "value": float(value),
                "kind": "rule" if (group["kind"] == "rule").any() else "detector",
                "why": "provisional, not consolidated yet: " + "; ".join(why),
            }
        )
    return pd.DataFrame(out, columns=list(PROVISIONAL_COLUMNS)).sort_values(
        "t_ms", ignore_index=True
    )
