"""The NEWS2 aggregate over time from what the store keeps: summaries and hot readings.

The raw readings of a collapsed stretch are archived, so the aggregate (each NEWS2
parameter's latest sub-score, summed; see ``medsleep.detect.episodes``) is not known minute by
minute. What is known per time slot is each parameter's lowest and highest sub-score: from
the NEWS2 band of every summary in the slot and from the values of the hot (raw and retained)
readings, implausible ones left out. A parameter's sub-score in force during a slot is one of
its sub-scores in the slot, or the one it had entering the slot, which lies in the range of
its last measured slot before. Summing each parameter's lowest and highest over both gives a
range the true aggregate stays inside for the whole slot (parameters never measured count 0,
as they do in the aggregate; values before ``since_ms`` are not looked at).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.engine import Connection

from medsleep.detect.rules import news2_scores
from medsleep.policy import Policy
from medsleep.read.text import normal_range
from medsleep.store.tables import HOT_STATES, READING, SUMMARY, SummaryState

_reading = READING
_summary = SUMMARY
NEWS2_COLUMNS = ("start_ms", "end_ms", "low", "high")


def news2_ranges(
    conn: Connection, policy: Policy, patient: str, since_ms: int, until_ms: int, res: int
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Per slot of ``res`` ms, the lowest and highest NEWS2 aggregate possible in the slot;
    and the NEWS2 parameters seen. See the module docstring."""
    banded = {code: cp for code, cp in policy.codes.items() if cp.bands}
    empty = pd.DataFrame({c: [] for c in NEWS2_COLUMNS})
    if not banded:
        return empty, ()
    s, r = _summary.c, _reading.c
    s_slot = (s.bucket_start_ms // literal(res)).label("slot")
    from_summaries = conn.execute(
        select(s.code, s_slot, s.band)
        .where(
            s.patient == patient,
            s.state == SummaryState.ACTIVE,
            s.code.in_(list(banded)),
            s.band.like("news2-%"),
            s.bucket_end_ms > since_ms,
            s.bucket_start_ms < until_ms,
        )
        .group_by(s.code, s_slot, s.band)
    ).all()
    plausible = [
        and_(r.code == code, r.value.between(*cp.plausible)) if cp.plausible else r.code == code
        for code, cp in banded.items()
    ]
    r_slot = (r.effective_ms // literal(res)).label("slot")
    from_readings = conn.execute(
        select(r.code, r_slot, func.min(r.value), func.max(r.value))
        .where(
            r.patient == patient,
            r.state.in_(HOT_STATES),
            r.effective_ms >= since_ms,
            r.effective_ms < until_ms,
            or_(*plausible),
        )
        .group_by(r.code, r_slot)
    ).all()
    ranges: list[tuple[str, int, int, int]] = []  # parameter, slot, low, high
    for code, slot, band in from_summaries:
        score = int(str(band).removeprefix("news2-"))
        ranges.append((banded[code].news2_parameter or code, int(slot), score, score))
    for code, slot, lowest, highest in from_readings:
        cp = banded[code]
        ends = news2_scores(np.array([lowest, highest], dtype=np.float64), cp.bands)
        low_normal, high_normal = normal_range(cp) or (-math.inf, math.inf)
        touches_normal = highest > low_normal and lowest <= high_normal
        low = min(score for _, score in cp.bands) if touches_normal else int(ends.min())
        ranges.append((cp.news2_parameter or code, int(slot), low, int(ends.max())))
    if not ranges:
        return empty, ()
    frame = pd.DataFrame(ranges, columns=["parameter", "slot", "low", "high"])
    per_slot = frame.groupby(["slot", "parameter"]).agg(low=("low", "min"), high=("high", "max"))
    own_low = per_slot["low"].unstack("parameter").sort_index()
    own_high = per_slot["high"].unstack("parameter").sort_index()
    # In force when a slot starts: the range of the parameter's last measured slot before it.
    entering_low, entering_high = own_low.ffill().shift(1), own_high.ffill().shift(1)
    lows = own_low.where(own_low <= entering_low, entering_low).fillna(own_low).fillna(0)
    highs = own_high.where(own_high >= entering_high, entering_high).fillna(own_high).fillna(0)
    slots = lows.index.to_numpy(dtype=np.int64)
    out = pd.DataFrame(
        {
            "start_ms": slots * res,
            "end_ms": slots * res + res,
            "low": lows.sum(axis=1).to_numpy(dtype=np.int64),
            "high": highs.sum(axis=1).to_numpy(dtype=np.int64),
        }
    )
    return out, tuple(str(p) for p in lows.columns)
