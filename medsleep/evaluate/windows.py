"""Scoring against labelled windows (the generator's ``labels.csv``). Pure.

- **event recall** = windows with a reading kept raw ÷ windows (also per ``event`` kind);
- **reading recall** = readings inside a window that are kept raw ÷ readings inside one (also
  per kind: how much of a long event is kept, not just whether it is seen);
- **precision** = kept readings inside an event or artifact window ÷ kept readings.

``readings`` has columns ``patient``, ``code``, ``t`` (epoch ms); ``kept`` is per reading.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from medsleep.evaluate.scoring import BoolArray, compression


def inside(readings: pd.DataFrame, windows: pd.DataFrame) -> BoolArray:
    """Per reading: does it lie in a window of its patient and code?"""
    mask = np.zeros(len(readings), dtype=np.bool_)
    index = readings.groupby(["patient", "code"]).indices
    t = readings["t"].to_numpy()
    for w in windows.itertuples():
        rows = index.get((w.patient, w.code))
        if rows is not None:
            hit = (t[rows] >= w.start_ms) & (t[rows] < w.end_ms)
            mask[rows[hit]] = True
    return mask


def caught(readings: pd.DataFrame, kept: BoolArray, events: pd.DataFrame) -> BoolArray:
    """Per window: is one of its readings kept raw?"""
    index = readings.groupby(["patient", "code"]).indices
    t = readings["t"].to_numpy()
    out = np.zeros(len(events), dtype=np.bool_)
    for i, w in enumerate(events.itertuples()):
        rows = index.get((w.patient, w.code))
        if rows is not None:
            out[i] = bool(np.any(kept[rows] & (t[rows] >= w.start_ms) & (t[rows] < w.end_ms)))
    return out


def window_score(
    readings: pd.DataFrame,
    kept: BoolArray,
    summaries: int,
    events: pd.DataFrame,
    artifacts: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Compression, event recall (in total and per kind), reading recall and precision."""
    in_event = inside(readings, events)
    relevant = in_event if artifacts is None else in_event | inside(readings, artifacts)
    hits = caught(readings, kept, events)
    kinds = events["event"].astype(str).to_numpy()
    return {
        "compression": compression(len(readings), int(kept.sum()), summaries),
        "event_recall": float(hits.sum()) / max(1, len(events)),
        "reading_recall": float(kept[in_event].mean()) if in_event.any() else float("nan"),
        "precision": float(relevant[kept].mean()) if kept.any() else float("nan"),
        "windows": len(events),
        "windows_caught": int(hits.sum()),
        "by_kind": {str(k): float(hits[kinds == k].mean()) for k in sorted(set(kinds))},
        "by_kind_readings": {
            str(k): _kept_share(readings, kept, events[kinds == k]) for k in sorted(set(kinds))
        },
    }


def _kept_share(readings: pd.DataFrame, kept: BoolArray, events: pd.DataFrame) -> float:
    mask = inside(readings, events)
    return float(kept[mask].mean()) if mask.any() else float("nan")
