"""Episodes (a patient's retained readings close in time, across vitals) and the NEWS2 aggregate.

The NEWS2 aggregate at a moment is the sum, over the NEWS2 parameters, of each parameter's
latest sub-score at that moment; it is computed from the whole frame, so a parameter that was
never retained still counts with its latest value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from medsleep.detect.classify import PatientDecisions
from medsleep.detect.rules import (
    FloatArray,
    IntArray,
    implausible_mask,
    news2_scores,
)
from medsleep.policy import CodePolicy, Policy

_MS_PER_MINUTE = 60_000


@dataclass(frozen=True)
class Episode:
    """Retained readings of one patient within ``episode_gap_minutes`` of each other.

    ``worst`` maps each code to its worst value in the episode: highest NEWS2 sub-score, then
    furthest outside the normal band (or the critical range for labs), then furthest from the
    patient's own median. ``peak_news2`` is the highest NEWS2 aggregate during the episode.
    """

    start_ms: int
    end_ms: int
    codes: tuple[str, ...]
    worst: dict[str, float]
    peak_news2: int
    reasons: tuple[str, ...]
    reading_ids: tuple[int, ...]


def news2_steps(frame: pd.DataFrame, policy: Policy) -> tuple[IntArray, IntArray]:
    """Times (epoch ms, ascending, distinct) at which the NEWS2 aggregate changes, and its value
    from each of those times on. Implausible readings do not count."""
    times: list[IntArray] = []
    params: list[IntArray] = []
    scores: list[IntArray] = []
    parameter_names: list[str] = []
    if len(frame):
        code_ids, uniques = pd.factorize(frame["code"], sort=False)
        t_all = frame["t"].to_numpy(dtype=np.int64)
        v_all = frame["value"].to_numpy(dtype=np.float64)
        for k, code in enumerate(uniques):
            cp = policy.for_code(str(code))
            if cp is None or not cp.bands:
                continue
            rows = np.flatnonzero(code_ids == k)
            v = v_all[rows]
            ok = ~implausible_mask(v, cp.plausible)
            name = cp.news2_parameter or cp.code
            if name not in parameter_names:
                parameter_names.append(name)
            times.append(t_all[rows[ok]])
            scores.append(news2_scores(v[ok], cp.bands))
            params.append(np.full(int(ok.sum()), parameter_names.index(name), dtype=np.int64))
    if not times or sum(a.size for a in times) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    t, param, score = t[order], np.concatenate(params)[order], np.concatenate(scores)[order]
    steps = np.arange(t.size)
    total = np.zeros(t.size, dtype=np.int64)
    for p in range(len(parameter_names)):
        latest = np.maximum.accumulate(np.where(param == p, steps, -1))
        total += np.where(latest >= 0, score[np.maximum(latest, 0)], 0)
    last_of_time = np.append(t[1:] != t[:-1], True)
    return t[last_of_time], total[last_of_time]


def news2_aggregate(frame: pd.DataFrame, policy: Policy) -> pd.Series:
    """The NEWS2 aggregate of one patient per minute, as of the end of each minute.

    Indexed by the minute's start (int64 epoch ms, named ``t``), from the minute of the first
    banded reading to that of the last; empty when the frame has no banded readings.
    """
    times, totals = news2_steps(frame, policy)
    if times.size == 0:
        return pd.Series([], index=pd.Index([], dtype=np.int64, name="t"), dtype=np.int64,
                         name="news2")  # fmt: skip
    first = times[0] // _MS_PER_MINUTE * _MS_PER_MINUTE
    minutes = np.arange(first, times[-1] + 1, _MS_PER_MINUTE, dtype=np.int64)
    at = np.searchsorted(times, minutes + _MS_PER_MINUTE, side="left") - 1
    return pd.Series(totals[at], index=pd.Index(minutes, name="t"), name="news2")


def peak_news2(times: IntArray, totals: IntArray, start_ms: int, end_ms: int) -> int:
    """Highest aggregate in force at any moment of [start_ms, end_ms] (0 before any reading)."""
    first = max(int(np.searchsorted(times, start_ms, side="right")) - 1, 0)
    stop = int(np.searchsorted(times, end_ms, side="right"))
    return int(totals[first:stop].max()) if stop > first else 0


def group_episodes(
    frame: pd.DataFrame, decisions: PatientDecisions, policy: Policy
) -> list[Episode]:
    """Group a patient's retained readings, across codes, into episodes.

    Readings retained as artifacts are left out, of the episodes and of their peak NEWS2 (a
    sensor glitch is not an episode, and scores nothing).
    Consecutive readings more than ``episode_gap_minutes`` apart start a new episode.
    """
    reasons = decisions.reasons
    clinical = reasons["kind"].to_numpy(dtype=object) != "artifact"
    ids = np.unique(reasons["reading_id"].to_numpy(dtype=np.int64)[clinical])
    if ids.size == 0:
        return []
    frame_ids = frame["id"].to_numpy(dtype=np.int64)
    sorter = np.argsort(frame_ids, kind="stable")
    rows = sorter[np.searchsorted(frame_ids, ids, sorter=sorter)]
    t = frame["t"].to_numpy(dtype=np.int64)[rows]
    order = np.argsort(t, kind="stable")
    rows, t, ids = rows[order], t[order], ids[order]
    gap = policy.episode_gap_minutes * _MS_PER_MINUTE
    episode_of = np.concatenate(([0], np.cumsum(np.diff(t) > gap))).astype(np.int64)
    n_episodes = int(episode_of[-1]) + 1
    starts = np.searchsorted(episode_of, np.arange(n_episodes), side="left")
    stops = np.searchsorted(episode_of, np.arange(n_episodes), side="right")

    codes = frame["code"].to_numpy(dtype=object)[rows]
    values = frame["value"].to_numpy(dtype=np.float64)[rows]
    news2 = decisions.news2.to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    worst = _worst_values(frame, policy, episode_of, codes, values, news2)
    rules = _rules_by_episode(reasons, ids, episode_of, n_episodes)
    # Artifacts score no NEWS2 points either (a plausible spike would score 3 by its value).
    artifacts = reasons["reading_id"].to_numpy(dtype=np.int64)[~clinical]
    scored = frame[~np.isin(frame_ids, artifacts)] if artifacts.size else frame
    times, totals = news2_steps(scored, policy)

    episodes = []
    for e in range(n_episodes):
        lo, hi = int(starts[e]), int(stops[e])
        start_ms, end_ms = int(t[lo]), int(t[hi - 1])
        episodes.append(
            Episode(
                start_ms=start_ms,
                end_ms=end_ms,
                codes=tuple(sorted(worst[e])),
                worst=dict(sorted(worst[e].items())),
                peak_news2=peak_news2(times, totals, start_ms, end_ms),
                reasons=rules[e],
                reading_ids=tuple(int(i) for i in np.sort(ids[lo:hi])),
            )
        )
    return episodes


def _worst_values(
    frame: pd.DataFrame,
    policy: Policy,
    episode_of: IntArray,
    codes: npt.NDArray[np.object_],
    values: FloatArray,
    news2: FloatArray,
) -> list[dict[str, float]]:
    """Worst value per (episode, code); see ``Episode``."""
    outside = np.zeros(values.size)
    spread = np.zeros(values.size)
    code_ids, uniques = pd.factorize(pd.Series(codes, dtype=object), sort=False)
    frame_codes = frame["code"].to_numpy(dtype=object)
    frame_values = frame["value"].to_numpy(dtype=np.float64)
    for k, code in enumerate(uniques):
        mask = code_ids == k
        v = values[mask]
        cp = policy.for_code(str(code))
        low, high, centre = _normal_range(frame_values[frame_codes == code], cp)
        outside[mask] = np.maximum(np.maximum(low - v, v - high), 0.0)
        spread[mask] = np.abs(v - centre)
    primary = np.nan_to_num(news2, nan=-1.0)
    order = np.lexsort((spread, outside, primary, code_ids, episode_of))
    e_sorted, c_sorted = episode_of[order], code_ids[order]
    last = np.append((e_sorted[1:] != e_sorted[:-1]) | (c_sorted[1:] != c_sorted[:-1]), True)
    worst: list[dict[str, float]] = [{} for _ in range(int(episode_of[-1]) + 1)]
    for i in order[last]:
        worst[int(episode_of[i])][str(uniques[code_ids[i]])] = float(values[i])
    return worst


def _normal_range(v: FloatArray, cp: CodePolicy | None) -> tuple[float, float, float]:
    """(low, high, centre) of the normal values of a code whose readings are ``v``, for
    ranking how bad a value is."""
    if cp is not None and cp.bands:
        scores = [score for _, score in cp.bands]
        normal = scores.index(min(scores))
        low = cp.bands[normal - 1][0] if normal > 0 else -np.inf
        high = cp.bands[normal][0]
    elif cp is not None and cp.critical is not None:
        low, high = cp.critical
        return low, high, (low + high) / 2
    else:
        low, high = -np.inf, np.inf
    if cp is not None:
        v = v[~implausible_mask(v, cp.plausible)]
    centre = float(np.median(v)) if v.size else 0.0
    return low, high, centre


def _rules_by_episode(
    reasons: pd.DataFrame, ids: IntArray, episode_of: IntArray, n_episodes: int
) -> list[tuple[str, ...]]:
    """Distinct rule names of each episode's readings, sorted."""
    reading_id = reasons["reading_id"].to_numpy(dtype=np.int64)
    sorter = np.argsort(ids)
    at = np.minimum(np.searchsorted(ids, reading_id, sorter=sorter), ids.size - 1)
    inside = ids[sorter[at]] == reading_id
    # a few hundred reasons a patient: sets beat a frame's drop_duplicates and groupby
    # (measured: 2.0 of a patient-day's 3.3 ms of episodes)
    rules: list[set[str]] = [set() for _ in range(n_episodes)]
    episodes = episode_of[sorter[at[inside]]].tolist()
    names = reasons["rule"].to_numpy(dtype=object)[inside].tolist()
    for episode, name in zip(episodes, names, strict=True):
        rules[episode].add(str(name))
    return [tuple(sorted(found)) for found in rules]
