"""Context rule: a few same-code readings each side of a rule or detector reading are kept as
its context.

Context is counted in readings *and* time: up to ``context_readings`` readings on each side of
an anchor, none further than ``context_minutes`` from it. At one reading a minute that is the
neighbouring minute; at one a second or one per beat it is still the neighbouring readings,
never everything within a minute. A follow-up rule: it runs after the others, on a series whose
``anchors`` (kept by a rule or detector) and ``kept`` (kept for any reason) are known.
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.detect.rules import IntArray
from medsleep.policy import Policy

_MS_PER_MINUTE = 60_000


class Context:
    name = "context"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        window = policy.context_minutes * _MS_PER_MINUTE
        reach = policy.context_readings
        if window < 0 or reach <= 0 or series.anchors is None or not series.anchors.any():
            return []
        kept = series.kept if series.kept is not None else series.anchors
        anchors = np.flatnonzero(series.anchors).astype(np.int64)
        t = series.times
        # Readings within `reach` positions of an anchor, nearest anchor first; positions are
        # positions in the series, so the count holds whatever the sampling rate.
        steps = np.concatenate([np.arange(1, reach + 1), -np.arange(1, reach + 1)])
        steps = steps[np.argsort(np.abs(steps), kind="stable")]
        candidate = (anchors[None, :] + steps[:, None]).ravel()
        anchor_of = np.broadcast_to(anchors, (steps.size, anchors.size)).ravel()
        inside = (candidate >= 0) & (candidate < series.size)
        candidate, anchor_of = candidate[inside], anchor_of[inside]
        near = np.abs(t[candidate] - t[anchor_of]) <= window
        free = ~(kept | series.in_artifact_run)
        near &= free[candidate]
        candidate, anchor_of = candidate[near], anchor_of[near]
        if candidate.size == 0:
            return []
        # Nearest in time wins; ties go to the earlier anchor, as before.
        distance = np.abs(t[candidate] - t[anchor_of])
        order = np.lexsort((anchor_of, distance, candidate))
        candidate, anchor_of = candidate[order], anchor_of[order]
        first = np.concatenate(([True], candidate[1:] != candidate[:-1]))
        positions: IntArray = candidate[first].astype(np.int64)
        return [Finding(positions, "context", "context", context_of=anchor_of[first])]
