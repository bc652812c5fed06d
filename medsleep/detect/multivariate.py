"""The patient-level multivariate detector: a patient's vitals aligned per bucket, one PyOD fit.

Not a per-series rule (it needs several series at once); it returns findings per series so
``classify_patient`` treats them like any rule's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medsleep.detect.contract import Finding, Series
from medsleep.detect.detectors import detect_aligned
from medsleep.policy import Policy

MULTIVARIATE_FFILL_MINUTES = 5
"""How long a vital's last value stands in for it when aligning series for the multivariate
detector (a reading missed for a few minutes should not drop the whole row)."""

_MS_PER_MINUTE = 60_000


def judge_multivariate(series: list[Series], policy: Policy) -> dict[int, list[Finding]]:
    """Findings of the multivariate detector, keyed by index into ``series``."""
    mv = policy.multivariate
    if not mv.detector or mv.contamination <= 0:
        return {}
    by_code = {s.code: i for i, s in enumerate(series)}
    chosen = [by_code[c] for c in dict.fromkeys(mv.codes) if c in by_code]
    if len(chosen) < 2:
        return {}
    align_ms = max(mv.align_minutes, 1) * _MS_PER_MINUTE
    positions = [np.flatnonzero(series[i].ok).astype(np.int64) for i in chosen]
    buckets = [series[i].times[pos] // align_ms for i, pos in zip(chosen, positions, strict=True)]
    if any(b.size == 0 for b in buckets):
        return {}
    first = min(int(b[0]) for b in buckets)
    last = max(int(b[-1]) for b in buckets)
    grid = np.full((last - first + 1, len(chosen)), np.nan)
    for j, (i, pos, b) in enumerate(zip(chosen, positions, buckets, strict=True)):
        grid[b - first, j] = series[i].values[pos]
    limit = max(1, MULTIVARIATE_FFILL_MINUTES // max(mv.align_minutes, 1))
    filled = pd.DataFrame(grid).ffill(limit=limit).to_numpy(dtype=np.float64)
    rows = np.flatnonzero(~np.isnan(filled).any(axis=1))
    flags = detect_aligned(
        filled[rows], mv.detector, mv.contamination, mv.min_deviation_z, mv.align_minutes
    )
    if flags.positions.size == 0:
        return {}
    flagged = rows[flags.positions] + first  # sorted bucket numbers
    rule = f"multivariate:{mv.detector}"
    found: dict[int, list[Finding]] = {}
    for j, (i, pos, b) in enumerate(zip(chosen, positions, buckets, strict=True)):
        at = np.minimum(np.searchsorted(flagged, b), flagged.size - 1)
        hit = flagged[at] == b
        if flags.columns is not None:
            hit &= flags.columns[at, j]
        found[i] = [Finding(pos[hit], "detector", rule, flags.scores[at[hit]], flags.threshold)]
    return found
