"""Classify one patient's readings: which to keep, why, and which band the others belong to.

``classify_patient`` runs the guard rules, the per-series PyOD detectors, the multivariate
detector and the context window over one patient's frame and returns ``PatientDecisions``.
Everything works on numpy arrays in (code, time) order; Python loops run over codes only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medsleep.detect.detectors import detect_aligned, detect_series
from medsleep.detect.reasons import KINDS, Reasons, band_labels_of, reasons_frame
from medsleep.detect.rules import (
    NO_SCORE,
    BoolArray,
    FloatArray,
    IntArray,
    band_edges,
    band_index,
    critical_bound,
    critical_mask,
    implausible_mask,
    news2_scores,
    run_lengths,
    transitions,
)
from medsleep.policy import CodePolicy, Policy

MULTIVARIATE_FFILL_MINUTES = 5
"""How long a vital's last value stands in for it when aligning series for the multivariate
detector (a reading missed for a few minutes should not drop the whole row)."""

_ANCHOR_KINDS = (KINDS.index("rule"), KINDS.index("detector"))  # get context around them
_MS_PER_MINUTE = 60_000


@dataclass(frozen=True, eq=False)
class PatientDecisions:
    """What ``classify_patient`` decided for one patient.

    ``reasons`` has one row per (retained reading, reason): ``reading_id``, ``kind`` (rule,
    detector, artifact, context), ``rule``, ``score``, ``threshold``, ``news2``, ``context_of``.
    ``band`` is aligned to the input frame's index: "news2-0".."news2-3" for banded codes,
    "artifact" inside a sensor-off run, "" otherwise. ``news2`` is the sub-score per reading
    (NA without bands or when implausible). ``retained_ids`` are the distinct retained ids.
    """

    reasons: pd.DataFrame
    band: pd.Series
    news2: pd.Series
    retained_ids: IntArray = field(init=False)

    def __post_init__(self) -> None:
        ids = np.unique(self.reasons["reading_id"].to_numpy(dtype=np.int64))
        object.__setattr__(self, "retained_ids", ids)


@dataclass(frozen=True)
class _Series:
    """One code's readings: a slice of the sorted arrays."""

    code: str
    start: int
    stop: int
    policy: CodePolicy | None


def classify_patient(frame: pd.DataFrame, policy: Policy) -> PatientDecisions:
    """Decide which of one patient's readings to retain, with reasons, and band the rest.

    ``frame`` has columns ``id`` (int64), ``code`` (str), ``t`` (int64 epoch ms), ``value``
    (float64), ideally sorted by code then t (it is sorted here if not).

    >>> from medsleep.policy import load_policy
    >>> frame = pd.DataFrame({"id": [1, 2], "code": ["8867-4"] * 2,
    ...                       "t": [0, 60_000], "value": [72.0, 140.0]})
    >>> decisions = classify_patient(frame, load_policy())
    >>> decisions.reasons[["reading_id", "kind", "rule", "context_of"]].values.tolist()
    [[1, 'context', 'context', 2], [2, 'rule', 'news2-critical', <NA>]]
    >>> decisions.band.tolist()
    ['news2-0', 'news2-3']
    """
    n = len(frame)
    if n == 0:
        return PatientDecisions(
            reasons_frame(Reasons(), np.empty(0, np.int64), np.empty(0, np.int64)),
            pd.Series([], index=frame.index, dtype="str", name="band"),
            pd.Series([], index=frame.index, dtype="Int64", name="news2"),
        )
    code_ids, uniques = pd.factorize(frame["code"], sort=False)
    t = frame["t"].to_numpy(dtype=np.int64)
    order = _sort_order(code_ids, t)
    ids = frame["id"].to_numpy(dtype=np.int64)
    values = frame["value"].to_numpy(dtype=np.float64)
    if order is not None:
        code_ids, t, ids, values = code_ids[order], t[order], ids[order], values[order]

    bounds = np.flatnonzero(np.diff(code_ids)) + 1
    starts = np.concatenate(([0], bounds))
    stops = np.concatenate((bounds, [n]))
    names = [str(uniques[code_ids[s]]) for s in starts]
    series = [
        _Series(name, int(s), int(e), policy.for_code(name))
        for name, s, e in zip(names, starts, stops, strict=True)
    ]

    band = np.full(n, NO_SCORE, dtype=np.int64)  # -2 artifact run, -1 none, k news2-k
    scores = np.full(n, NO_SCORE, dtype=np.int64)
    valid = np.ones(n, dtype=np.bool_)
    in_run = np.zeros(n, dtype=np.bool_)
    reasons = Reasons()
    for s in series:
        _classify_series(s, t, values, policy, reasons, band, scores, valid, in_run)
    _multivariate(series, t, values, valid, policy, reasons)
    _context(series, t, ids, in_run, policy, reasons)

    table = reasons_frame(reasons, ids, scores)
    band_labels = band_labels_of(band)
    news2 = pd.array(scores, dtype="Int64")
    news2[scores < 0] = pd.NA
    if order is not None:
        inverse = np.empty_like(order)
        inverse[order] = np.arange(n)
        band_labels = band_labels[inverse]
        news2 = news2[inverse]
    return PatientDecisions(
        table,
        pd.Series(band_labels, index=frame.index, dtype="str", name="band"),
        pd.Series(news2, index=frame.index, name="news2"),
    )


def _sort_order(code_ids: IntArray, t: IntArray) -> IntArray | None:
    """Permutation sorting by (code, t), or None when already grouped by code and time-ordered.

    ``pd.factorize`` numbers codes by first appearance, so a frame grouped by code has
    non-decreasing code numbers whatever the codes' alphabetical order.
    """
    code_step = np.diff(code_ids)
    if np.all(code_step >= 0) and np.all((np.diff(t) >= 0) | (code_step != 0)):
        return None
    return np.lexsort((t, code_ids)).astype(np.int64)


def _classify_series(
    s: _Series,
    t: IntArray,
    values: FloatArray,
    policy: Policy,
    reasons: Reasons,
    band: IntArray,
    scores: IntArray,
    valid: BoolArray,
    in_run: BoolArray,
) -> None:
    """Rules and the univariate detector for one series; fills the per-reading arrays."""
    cp = s.policy
    if cp is None:
        return
    sl = slice(s.start, s.stop)
    v = values[sl]
    times = t[sl]
    offset = s.start

    implausible = implausible_mask(v, cp.plausible)
    run = implausible & (run_lengths(implausible) >= max(policy.artifact_run_min, 1))
    isolated = implausible & ~run
    ok = ~implausible
    valid[sl] = ok
    in_run[sl] = run

    sub = news2_scores(v, cp.bands)
    sub[implausible] = NO_SCORE
    scores[sl] = sub
    if cp.bands:
        # An isolated artifact takes the band around it so it does not split a summary.
        carried = pd.Series(np.where(ok, sub, np.nan)).ffill().bfill()
        series_band = carried.fillna(NO_SCORE).to_numpy(dtype=np.int64)
    else:
        series_band = np.full(v.size, NO_SCORE, dtype=np.int64)
    series_band[run] = -2
    band[sl] = series_band

    if isolated.any():
        pos = np.flatnonzero(isolated)
        bad = v[pos]
        if cp.plausible is not None:
            low, high = cp.plausible
            bound = np.where(bad < low, low, np.where(bad > high, high, np.nan))
        else:
            bound = np.full(pos.size, np.nan)
        reasons.add(pos + offset, "artifact", "implausible", bad, bound)

    ok_pos = np.flatnonzero(ok)
    ok_values = v[ok_pos]
    if cp.bands:
        edges = band_edges(cp.bands)
        top = max(score for _, score in cp.bands)
        ok_sub = sub[ok_pos]
        critical = ok_pos[ok_sub == top] if top > 0 else ok_pos[:0]
        reasons.add(
            critical + offset,
            "rule",
            "news2-critical",
            v[critical],
            edges[band_index(v[critical], cp.bands)],
        )
        dwell_ms = policy.transition_dwell_minutes * _MS_PER_MINUTE
        moved = ok_pos[transitions(ok_sub, policy.transition_dwell, times[ok_pos], dwell_ms)]
        moved = moved[(sub[moved] > 0) & (sub[moved] < top)]
        reasons.add(
            moved + offset,
            "rule",
            "news2-transition",
            v[moved],
            edges[band_index(v[moved], cp.bands)],
        )
    if cp.critical is not None:
        crit = ok_pos[critical_mask(ok_values, cp.critical)]
        reasons.add(
            crit + offset, "rule", "critical-lab", v[crit], critical_bound(v[crit], cp.critical)
        )
    if cp.detector:
        flags = detect_series(
            ok_values, cp.detector, cp.contamination, cp.min_deviation_z, times=times[ok_pos]
        )
        rule = f"detector:{cp.detector}"
        reasons.add(
            ok_pos[flags.positions] + offset, "detector", rule, flags.scores, flags.threshold
        )
        segment_rule = f"segment:{cp.detector}"
        segment = ok_pos[flags.segment] + offset
        reasons.add(segment, "detector", segment_rule, flags.segment_z, cp.min_deviation_z)


def _multivariate(
    series: list[_Series],
    t: IntArray,
    values: FloatArray,
    valid: BoolArray,
    policy: Policy,
    reasons: Reasons,
) -> None:
    """Align the multivariate codes per bucket, fit one detector, retain readings at flags."""
    mv = policy.multivariate
    if not mv.detector or mv.contamination <= 0:
        return
    by_code = {s.code: s for s in series}
    chosen = [by_code[c] for c in dict.fromkeys(mv.codes) if c in by_code]
    if len(chosen) < 2:
        return
    align_ms = max(mv.align_minutes, 1) * _MS_PER_MINUTE
    positions = []
    for s in chosen:
        pos = np.arange(s.start, s.stop, dtype=np.int64)
        positions.append(pos[valid[s.start : s.stop]])
    buckets = [t[pos] // align_ms for pos in positions]
    if any(b.size == 0 for b in buckets):
        return
    first = min(int(b[0]) for b in buckets)
    last = max(int(b[-1]) for b in buckets)
    grid = np.full((last - first + 1, len(chosen)), np.nan)
    for j, (pos, b) in enumerate(zip(positions, buckets, strict=True)):
        grid[b - first, j] = values[pos]
    limit = max(1, MULTIVARIATE_FFILL_MINUTES // max(mv.align_minutes, 1))
    filled = pd.DataFrame(grid).ffill(limit=limit).to_numpy(dtype=np.float64)
    rows = np.flatnonzero(~np.isnan(filled).any(axis=1))
    flags = detect_aligned(
        filled[rows], mv.detector, mv.contamination, mv.min_deviation_z, mv.align_minutes
    )
    if flags.positions.size == 0:
        return
    flagged = rows[flags.positions] + first  # sorted bucket numbers
    rule = f"multivariate:{mv.detector}"
    columns = flags.columns
    for j, (pos, b) in enumerate(zip(positions, buckets, strict=True)):
        at = np.minimum(np.searchsorted(flagged, b), flagged.size - 1)
        hit = flagged[at] == b
        if columns is not None:
            hit &= columns[at, j]
        reasons.add(pos[hit], "detector", rule, flags.scores[at[hit]], flags.threshold)


def _context(
    series: list[_Series],
    t: IntArray,
    ids: IntArray,
    in_run: BoolArray,
    policy: Policy,
    reasons: Reasons,
) -> None:
    """Retain same-code readings near each rule/detector reading as its context."""
    window = policy.context_minutes * _MS_PER_MINUTE
    if window < 0 or not reasons.positions:
        return
    positions = reasons.concat("positions")
    kinds = reasons.concat("kinds")
    retained = np.zeros(t.size, dtype=np.bool_)
    retained[positions] = True
    anchor = np.zeros(t.size, dtype=np.bool_)
    anchor[positions[np.isin(kinds, _ANCHOR_KINDS)]] = True
    for s in series:
        anchors = np.flatnonzero(anchor[s.start : s.stop]) + s.start
        if anchors.size == 0:
            continue
        candidates = np.flatnonzero(~(retained | in_run)[s.start : s.stop]) + s.start
        if candidates.size == 0:
            continue
        anchor_t = t[anchors]
        ct = t[candidates]
        right = np.searchsorted(anchor_t, ct, side="left")
        left = right - 1
        left_ok = left >= 0
        right_ok = right < anchors.size
        left = np.maximum(left, 0)
        right = np.minimum(right, anchors.size - 1)
        d_left = np.where(left_ok, ct - anchor_t[left], np.iinfo(np.int64).max)
        d_right = np.where(right_ok, anchor_t[right] - ct, np.iinfo(np.int64).max)
        nearest = np.where(d_left <= d_right, left, right)
        distance = np.minimum(d_left, d_right)
        near = distance <= window
        reasons.add(
            candidates[near],
            "context",
            "context",
            np.float64(np.nan),
            np.float64(np.nan),
            ids[anchors[nearest[near]]],
        )
