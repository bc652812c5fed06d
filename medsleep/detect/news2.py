"""NEWS2 rule: readings in the top band of their parameter, and confirmed band changes.

A band change counts once the series stays in the new band ``transition_dwell`` readings and
``transition_dwell_minutes`` (hysteresis, see ``rules.transitions``); moves into band 0 or the
top band are not transitions (the top band is kept anyway).
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.detect.rules import FloatArray, band_edges, band_index, transitions
from medsleep.policy import Policy

_MS_PER_MINUTE = 60_000


class News2Bands:
    name = "news2"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        bands = series.rules.bands
        if not bands:
            return []
        v = series.values
        sub = series.news2
        ok_pos = np.flatnonzero(series.ok).astype(np.int64)
        edges = band_edges(bands)

        def at_edge(x: FloatArray) -> FloatArray:
            return edges[band_index(x, bands)]

        top = max(score for _, score in bands)
        ok_sub = sub[ok_pos]
        critical = ok_pos[ok_sub == top] if top > 0 else ok_pos[:0]
        dwell_ms = policy.transition_dwell_minutes * _MS_PER_MINUTE
        moved = ok_pos[transitions(ok_sub, policy.transition_dwell, series.times[ok_pos], dwell_ms)]
        moved = moved[(sub[moved] > 0) & (sub[moved] < top)]
        return [
            Finding(critical, "rule", "news2-critical", v[critical], at_edge(v[critical])),
            Finding(moved, "rule", "news2-transition", v[moved], at_edge(v[moved])),
        ]
