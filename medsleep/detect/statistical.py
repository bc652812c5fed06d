"""Detector rule: the code's PyOD detector over its plausible readings, flags grown into runs."""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.detect.detectors import detect_series
from medsleep.policy import Policy


class Detector:
    name = "detector"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        cp = series.rules
        if not cp.detector:
            return []
        ok_pos = np.flatnonzero(series.ok).astype(np.int64)
        flags = detect_series(
            series.values[ok_pos],
            cp.detector,
            cp.contamination,
            cp.min_deviation_z,
            times=series.times[ok_pos],
        )
        return [
            Finding(
                ok_pos[flags.positions],
                "detector",
                f"detector:{cp.detector}",
                flags.scores,
                flags.threshold,
            ),
            Finding(
                ok_pos[flags.segment],
                "detector",
                f"segment:{cp.detector}",
                flags.segment_z,
                cp.min_deviation_z,
            ),
        ]
