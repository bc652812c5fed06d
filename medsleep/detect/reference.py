"""Reference-range rule: in a sparse series, a reading outside the usual reference interval is
kept.

A series is sparse when its readings are too far apart for a bucket to hold a summary's worth
of them (median interval above ``bucket_minutes / min_summary_readings``): outpatient vitals a
few times a year, labs once a day. There a reading is an event on its own, and one outside the
catalogue's reference interval (a systolic of 165 mmHg, an HbA1c of 7.9 %) is kept with that
as its reason. Dense monitoring has NEWS2 bands, critical values and detectors instead; the
reference interval of a minute-by-minute heart rate would keep every tachycardic minute.
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.policy import Policy

_MS_PER_MINUTE = 60_000


def is_sparse(series: Series, policy: Policy) -> bool:
    """True when a bucket would on average hold fewer readings than a summary needs."""
    if series.size < 2:
        return True
    interval = float(np.median(np.diff(series.times)))
    return interval * max(policy.min_summary_readings, 1) > policy.bucket_minutes * _MS_PER_MINUTE


class ReferenceRange:
    name = "reference"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        reference = series.rules.reference
        if reference is None or not is_sparse(series, policy):
            return []
        low, high = reference
        v = series.values
        outside = series.ok & ((v < low) | (v > high))
        pos = np.flatnonzero(outside).astype(np.int64)
        bound = np.where(v[pos] < low, low, high)
        return [Finding(pos, "rule", "outside-reference", v[pos], bound)]
