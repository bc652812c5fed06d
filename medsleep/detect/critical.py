"""Critical-value rule: a plausible reading outside the code's critical range is kept."""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.detect.rules import critical_bound, critical_mask
from medsleep.policy import Policy


class CriticalValues:
    name = "critical"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        critical = series.rules.critical
        if critical is None:
            return []
        ok_pos = np.flatnonzero(series.ok).astype(np.int64)
        v = series.values
        crit = ok_pos[critical_mask(v[ok_pos], critical)]
        return [Finding(crit, "rule", "critical-lab", v[crit], critical_bound(v[crit], critical))]
