"""Plausibility rule: an isolated implausible reading is kept as a probable artifact.

Readings inside a sensor-off run (``artifact_run_min`` implausible in a row) are not kept: they
collapse into an ``artifact`` band summary that holds their values.
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.policy import Policy


class Plausibility:
    name = "plausibility"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        isolated = series.implausible & ~series.in_artifact_run
        if not isolated.any():
            return []
        pos = np.flatnonzero(isolated).astype(np.int64)
        bad = series.values[pos]
        plausible = series.rules.plausible
        if plausible is not None:
            low, high = plausible
            bound = np.where(bad < low, low, np.where(bad > high, high, np.nan))
        else:
            bound = np.full(pos.size, np.nan)
        return [Finding(pos, "artifact", "implausible", bad, bound)]
