"""Artifacts by rate of change: a jump out and back that the parameter cannot make.

A parameter can change between two readings at most ``max_step + max_rate * dt`` (the
catalogue's ``max_step``: the largest real step between two successive readings however close,
e.g. a premature beat or the onset of a tachyarrhythmia; ``max_rate``: the fastest sustained
change per second). An *excursion* is one reading, or a few readings close together, that got
there faster than that and came back faster than that, to a value its neighbour before could
have reached: HR 90 → 290 → 90, SpO2 97 → 40 → 97 within seconds, the pressure of a flushed
arterial line. It is a probable sensor artifact, neither a rule hit nor an episode.

Judged on the plausible readings (implausible ones are the plausibility rule's), in real time
between readings: irregular timing, one a minute or one per beat alike. A jump that does not
come back (a level shift, the onset of a sustained rhythm) is no artifact by this rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medsleep.detect.rules import BoolArray, FloatArray, IntArray

MAX_EXCURSION_READINGS = 5
"""At most this many readings between the jump out and the jump back."""

MAX_EXCURSION_SECONDS = 30.0
"""... spanning at most this long from its first reading to its last: a flush or a motion burst.
Longer than that a value that stays out is a state of the patient (or a sensor-off run)."""


@dataclass(frozen=True)
class RateArtifacts:
    """Positions (into the series) of excursion readings, the rate of the jump that brought
    each excursion out (units per second) and the fastest rate the parameter could have
    changed at over that interval (the threshold)."""

    positions: IntArray
    rates: FloatArray
    allowed: FloatArray

    @classmethod
    def none(cls) -> RateArtifacts:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64))


def reach(dt_s: FloatArray, max_step: float, max_rate: float) -> FloatArray:
    """The largest change the parameter can make in ``dt_s`` seconds.

    >>> reach(np.array([0.5, 60.0]), 120.0, 0.5).tolist()
    [120.25, 150.0]
    """
    out: FloatArray = max_step + max_rate * np.maximum(dt_s, 0.0)
    return out


def rate_artifacts(
    times: IntArray, values: FloatArray, ok: BoolArray, max_step: float, max_rate: float
) -> RateArtifacts:
    """Excursions among the ``ok`` readings of one time-ordered series (``times`` epoch ms).

    >>> t = np.arange(5) * 60_000
    >>> found = rate_artifacts(t, np.array([90.0, 91, 290, 92, 90]), np.ones(5, bool), 120, 0.5)
    >>> found.positions.tolist(), found.rates.round(2).tolist(), found.allowed.tolist()
    ([2], [3.32], [2.5])
    """
    ok_pos = np.flatnonzero(ok).astype(np.int64)
    n = ok_pos.size
    if n < 3 or not (np.isfinite(max_step) and np.isfinite(max_rate)):
        return RateArtifacts.none()
    t = times[ok_pos].astype(np.float64) / 1000.0
    v = values[ok_pos]
    d = np.diff(v)
    dt = np.diff(t)
    too_fast = np.abs(d) > reach(dt, max_step, max_rate)  # step k is from reading k to k+1
    if not too_fast.any():
        return RateArtifacts.none()
    member = np.zeros(n, dtype=np.bool_)
    rate = np.zeros(n, dtype=np.float64)
    allowed = np.zeros(n, dtype=np.float64)
    jumps = np.flatnonzero(too_fast)
    for length in range(1, MAX_EXCURSION_READINGS + 1):
        # Out at step a (into reading a+1), back at step a+length (out of reading a+length).
        a = jumps[jumps + length < n - 1]
        b = a + length
        back = too_fast[b] & (np.sign(d[a]) != np.sign(d[b]))
        a, b = a[back], b[back]
        if a.size == 0:
            continue
        # It returns to where it could have got from the reading before it, stays out the
        # whole time (no reading of it is within reach of that one), and is short.
        before, after = v[a], v[b + 1]
        returns = np.abs(after - before) <= reach(t[b + 1] - t[a], max_step, max_rate)
        short = t[b] - t[a + 1] <= MAX_EXCURSION_SECONDS
        keep = returns & short & ~member[a + 1]
        for k in range(1, length):
            inside = a + 1 + k
            keep &= np.abs(v[inside] - before) > reach(t[inside] - t[a], max_step, max_rate)
        for start, stop in zip(a[keep] + 1, b[keep] + 1, strict=True):
            span = slice(int(start), int(stop))
            member[span] = True
            rate[span] = abs(d[start - 1]) / max(dt[start - 1], 1e-3)
            allowed[span] = reach(dt[start - 1 : start], max_step, max_rate)[0] / max(
                dt[start - 1], 1e-3
            )
    found = np.flatnonzero(member)
    return RateArtifacts(ok_pos[found], rate[found], allowed[found])
