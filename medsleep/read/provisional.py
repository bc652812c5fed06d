"""Provisional markers for the readings not consolidated yet: what consolidation would keep
and why, decided now with consolidation's own ``classify_patient``, so that a desaturation in
the hot part of a chart is as visible as one in the consolidated part."""

from __future__ import annotations

from datetime import tzinfo

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from medsleep.detect import classify_patient, warm_up_detectors
from medsleep.policy import Policy
from medsleep.read.explain import explain_reason
from medsleep.store.tables import READING, ReadingState

PROVISIONAL_COLUMNS = ("id", "code", "unit", "t_ms", "value", "kind", "why")
MAX_HOT_READINGS = 200_000
"""More hot readings than this (a held patient's months) are not classified on the fly."""


def warm_up(policy: Policy) -> None:
    """Import the detectors provisional markers run for ``policy`` now (a dashboard server
    does it before it listens, so its first session does not wait ~2 s for PyOD)."""
    warm_up_detectors(policy.detector_names)


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
    ids, codes, _, times, values = zip(*rows, strict=True)
    frame = pd.DataFrame(
        {
            "id": np.array(ids, dtype=np.int64),
            "code": np.array(codes, dtype=object),
            "t": np.array(times, dtype=np.int64),
            "value": np.array(values, dtype=np.float64),
        }
    )
    reasons = classify_patient(frame[["id", "code", "t", "value"]], policy).reasons
    reasons = reasons[reasons["kind"].isin(("rule", "detector"))]
    if reasons.empty:
        return empty
    by_id = {int(row[0]): row for row in rows}
    # One pass over the reasons (a groupby with a frame per reading cost ~0.7 s a patient).
    why: dict[int, list[str]] = {}
    rule: dict[int, bool] = {}
    for reason in reasons.itertuples(index=False):
        reading_id = int(str(reason.reading_id))
        _, code, _, t_ms, value = by_id[reading_id]
        text = explain_reason(reason, code, int(t_ms), float(value), policy, tz)
        why.setdefault(reading_id, []).append(text)
        rule[reading_id] = rule.get(reading_id, False) or str(reason.kind) == "rule"
    out = [
        {
            "id": reading_id,
            "code": by_id[reading_id][1],
            "unit": by_id[reading_id][2],
            "t_ms": int(by_id[reading_id][3]),
            "value": float(by_id[reading_id][4]),
            "kind": "rule" if rule[reading_id] else "detector",
            "why": "provisional, not consolidated yet: " + "; ".join(texts),
        }
        for reading_id, texts in why.items()
    ]
    return pd.DataFrame(out, columns=list(PROVISIONAL_COLUMNS)).sort_values(
        "t_ms", ignore_index=True
    )
