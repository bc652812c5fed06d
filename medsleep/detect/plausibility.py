"""Plausibility rules: an isolated implausible reading, and a jump out and back faster than the
parameter can change (``detect.rate``), are kept as probable artifacts.

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


class RateOfChange:
    """Kind ``artifact``, rule ``rate-of-change``: score is the rate of the jump out (units per
    second), threshold the fastest the parameter can change over that interval."""

    name = "rate-of-change"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        found = series.rate_artifacts
        if found.positions.size == 0:
            return []
        return [Finding(found.positions, "artifact", "rate-of-change", found.rates, found.allowed)]
