"""Context rule: same-code readings near a rule or detector reading are kept as its context.

A follow-up rule: it runs after the others, on a series whose ``anchors`` (kept by a rule or
detector) and ``kept`` (kept for any reason) are known.
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.policy import Policy

_MS_PER_MINUTE = 60_000


class Context:
    name = "context"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        window = policy.context_minutes * _MS_PER_MINUTE
        if window < 0 or series.anchors is None or not series.anchors.any():
            return []
        kept = series.kept if series.kept is not None else series.anchors
        anchors = np.flatnonzero(series.anchors)
        candidates = np.flatnonzero(~(kept | series.in_artifact_run))
        if candidates.size == 0:
            return []
        t = series.times
        anchor_t = t[anchors]
        ct = t[candidates]
        right = np.searchsorted(anchor_t, ct, side="left")
        left = right - 1
        left_ok = left >= 0
        right_ok = right < anchors.size
        left = np.maximum(left, 0)
        right = np.minimum(right, anchors.size - 1)
        far = np.iinfo(np.int64).max
        d_left = np.where(left_ok, ct - anchor_t[left], far)
        d_right = np.where(right_ok, anchor_t[right] - ct, far)
        nearest = np.where(d_left <= d_right, left, right)
        near = np.minimum(d_left, d_right) <= window
        return [
            Finding(
                candidates[near].astype(np.int64),
                "context",
                "context",
                context_of=anchors[nearest[near]].astype(np.int64),
            )
        ]
