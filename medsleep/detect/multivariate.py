"""The patient-level multivariate detector: a patient's vitals aligned per bucket, one PyOD fit.

Not a per-series rule (it needs several series at once); it returns findings per series so
``classify_patient`` treats them like any rule's.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from medsleep.detect.contract import Finding, Series
from medsleep.detect.detectors import detect_aligned
from medsleep.policy import Policy

MULTIVARIATE_FFILL_MINUTES = 5
"""How long a vital's last value stands in for it when aligning series for the multivariate
detector (a reading missed for a few minutes should not drop the whole row)."""

_MS_PER_MINUTE = 60_000


def multivariate_inputs(series: list[Series], policy: Policy) -> list[int]:
    """Indexes into ``series`` of the detector's inputs: for each of the policy's parameters
    the series of any of its codes with the most plausible readings (a monitor's MDC heart
    rate as well as LOINC 8867-4; one column per parameter, so heart rate and pulse rate do
    not both go in), then the codes the policy names one by one."""
    mv = policy.multivariate
    chosen: list[int] = []
    for parameter in mv.parameters:
        candidates = [i for i, s in enumerate(series) if s.rules.parameter == parameter]
        if candidates:
            chosen.append(max(candidates, key=lambda i: int(series[i].ok.sum())))
    by_code = {s.code: i for i, s in enumerate(series)}
    for code in mv.codes:
        if code in by_code and by_code[code] not in chosen:
            chosen.append(by_code[code])
    return chosen


def judge_multivariate(series: list[Series], policy: Policy) -> dict[int, list[Finding]]:
    """Findings of the multivariate detector, keyed by index into ``series``."""
    mv = policy.multivariate
    if not mv.detector or mv.contamination <= 0:
        return {}
    chosen = multivariate_inputs(series, policy)
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
        # A flagged bucket keeps the reading that stood for it in the grid (its last one), not
        # every reading in it: a series at one a second has 60 in a minute.
        hit = (flagged[at] == b) & _last_in_bucket(b)
        if flags.columns is not None:
            hit &= flags.columns[at, j]
        found[i] = [Finding(pos[hit], "detector", rule, flags.scores[at[hit]], flags.threshold)]
    return found


def _last_in_bucket(buckets: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """True for the last of each run of equal (sorted) bucket numbers."""
    out: npt.NDArray[np.bool_] = np.ones(buckets.size, dtype=np.bool_)
    out[:-1] = buckets[1:] != buckets[:-1]
    return out
