"""The peers medsleep is measured against, on the same readings. Pure.

- **hourly downsampling** (a TimescaleDB continuous aggregate): one row per series and hour,
  no raw reading kept;
- **NEWS2/critical rules alone**: keep readings whose NEWS2 sub-score reaches ``min_score`` or
  that are outside their critical range, summarise the rest per series, hour and band;
- **swinging door** (PI historian compression): keep the readings a per-series swinging door
  of deviation ``factor × std`` keeps; ``swinging_door_matched`` bisects ``factor`` until the
  door compresses as much as a target (medsleep's compression).

``frame`` has columns ``patient``, ``code``, ``t`` (epoch ms) and ``value``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from medsleep.detect.rules import BoolArray, FloatArray, IntArray, news2_scores
from medsleep.evaluate.scoring import compression
from medsleep.policy import Policy

HOUR_MS = 3_600_000


@dataclass(frozen=True, eq=False)
class PeerResult:
    """What a peer keeps raw (per reading in), how many summary rows it leaves, and its knob."""

    name: str
    kept: BoolArray
    summaries: int
    setting: str = ""


def hourly_downsample(frame: pd.DataFrame) -> PeerResult:
    buckets = frame.assign(b=frame["t"] // HOUR_MS).groupby(["patient", "code", "b"]).ngroups
    return PeerResult("hourly downsampling", np.zeros(len(frame), dtype=np.bool_), buckets)


def news2_subscores(frame: pd.DataFrame, policy: Policy) -> IntArray:
    """Per reading: its NEWS2 sub-score, 3 when outside the critical range, -1 when
    implausible or without bands."""
    score = np.full(len(frame), -1, dtype=np.int64)
    values = frame["value"].to_numpy(dtype=np.float64)
    for code, rows in frame.groupby("code").indices.items():
        cp = policy.for_code(str(code))
        if cp is None:
            continue
        v = values[rows]
        if cp.bands:
            score[rows] = news2_scores(v, cp.bands)
        if cp.critical:
            score[rows[(v < cp.critical[0]) | (v > cp.critical[1])]] = 3
        if cp.plausible:
            score[rows[(v < cp.plausible[0]) | (v > cp.plausible[1])]] = -1
    return score


def news2_rules(frame: pd.DataFrame, policy: Policy, min_score: int = 3) -> PeerResult:
    score = news2_subscores(frame, policy)
    keep = score >= min_score
    rest = frame.loc[~keep].assign(b=frame["t"] // HOUR_MS, band=score[~keep])
    summaries = rest.groupby(["patient", "code", "b", "band"]).ngroups
    return PeerResult("NEWS2/critical rules", keep, summaries, f"score >= {min_score}")


def swinging_door(t: IntArray, v: FloatArray, deviation: float) -> BoolArray:
    """Readings a swinging door with ``deviation`` keeps (the first and last always).

    >>> swinging_door(np.arange(5), np.array([0.0, 0.0, 5.0, 0.0, 0.0]), 1.0).tolist()
    [True, True, True, True, True]
    """
    keep = np.zeros(len(v), dtype=np.bool_)
    if len(v) == 0:
        return keep
    keep[0] = keep[-1] = True
    anchor = 0
    upper, lower = np.inf, -np.inf
    for i in range(1, len(v)):
        dt = float(t[i] - t[anchor]) or 1.0
        upper = min(upper, (v[i] + deviation - v[anchor]) / dt)
        lower = max(lower, (v[i] - deviation - v[anchor]) / dt)
        if lower > upper:
            keep[i - 1] = True
            anchor = i - 1
            dt = float(t[i] - t[anchor]) or 1.0
            upper = (v[i] + deviation - v[anchor]) / dt
            lower = (v[i] - deviation - v[anchor]) / dt
    return keep


def swinging_door_at(frame: pd.DataFrame, factor: float) -> BoolArray:
    """Per-series swinging door with deviation ``factor`` × the series' standard deviation."""
    t = frame["t"].to_numpy(dtype=np.int64)
    v = frame["value"].to_numpy(dtype=np.float64)
    kept = np.zeros(len(frame), dtype=np.bool_)
    for rows in frame.groupby(["patient", "code"]).indices.values():
        scale = float(np.std(v[rows])) or 1.0
        kept[rows] = swinging_door(t[rows], v[rows], factor * scale)
    return kept


def swinging_door_matched(frame: pd.DataFrame, target: float, steps: int = 14) -> PeerResult:
    """The swinging door whose deviation is bisected to compress ``target``× (or just more)."""
    lo, hi = 0.0, 8.0
    kept = swinging_door_at(frame, hi)
    factor = hi
    for _ in range(steps):
        mid = (lo + hi) / 2
        trial = swinging_door_at(frame, mid)
        if compression(len(frame), int(trial.sum()), 0) < target:
            lo = mid
        else:
            hi, kept, factor = mid, trial, mid
    return PeerResult("swinging door", kept, 0, f"deviation {factor:.3f} SD")
