"""Clinical guard rules on one series: NEWS2 bands, plausibility, critical values, transitions.

Every function takes numpy arrays of one series (one code, time-ordered) and returns arrays of
the same length or positions into them; none loops over readings in Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NO_SCORE = -1
"""Sub-score placeholder for readings without one (no bands, or implausible)."""


def news2_scores(values: FloatArray, bands: tuple[tuple[float, int], ...]) -> IntArray:
    """NEWS2 sub-score of every value: the score of the first band whose upper bound is >= it.

    >>> news2_scores(np.array([8.0, 9.0, 25.0]), ((8, 3), (11, 1), (20, 0), (24, 2), (np.inf, 3)))
    array([3, 1, 3])
    """
    if not bands:
        return np.full(values.shape, NO_SCORE, dtype=np.int64)
    uppers = np.array([upper for upper, _ in bands], dtype=np.float64)
    scores = np.array([score for _, score in bands], dtype=np.int64)
    index = np.searchsorted(uppers, values, side="left")
    return scores[np.minimum(index, len(scores) - 1)]


def band_edges(bands: tuple[tuple[float, int], ...]) -> FloatArray:
    """For each band, the bound on the side of the normal (score 0) band; NaN for that band.

    The bound is what a reading crossed to get into the band, recorded as the rule threshold.
    """
    if not bands:
        return np.empty(0, dtype=np.float64)
    uppers = [upper for upper, _ in bands]
    scores = [score for _, score in bands]
    normal = scores.index(min(scores))
    edges = np.full(len(bands), np.nan)
    for i in range(len(bands)):
        if i < normal:
            edges[i] = uppers[i]
        elif i > normal:
            edges[i] = uppers[i - 1]
    return edges


def band_index(values: FloatArray, bands: tuple[tuple[float, int], ...]) -> IntArray:
    """Index of the band each value falls in (same search as ``news2_scores``)."""
    uppers = np.array([upper for upper, _ in bands], dtype=np.float64)
    return np.minimum(np.searchsorted(uppers, values, side="left"), len(bands) - 1)


def implausible_mask(values: FloatArray, plausible: tuple[float, float] | None) -> BoolArray:
    """True where a value is missing (NaN) or outside the plausible range."""
    mask = np.isnan(values)
    if plausible is not None:
        low, high = plausible
        mask |= (values < low) | (values > high)
    return mask


NO_SIGNAL_Z = 6.0
"""Zeros count as "no signal" in a series whose readings sit this many robust SDs from 0."""


def mad_scale(x: FloatArray) -> float:
    """1.4826 x the median absolute deviation from the median: a normal sample's standard
    deviation, robustly (0 for an empty or a mostly constant ``x``).

    >>> mad_scale(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    1.4826
    """
    if x.size == 0:
        return 0.0
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def robust_scale(x: FloatArray) -> float:
    """Robust standard deviation of ``x``: MAD, or mean absolute deviation when MAD is 0.

    Integer-valued series (SpO2, respiratory rate) often have a MAD of 0; the mean absolute
    deviation still measures their spread. It is not robust, so it is only the fallback.
    """
    scale = mad_scale(x)
    if scale > 0 or x.size == 0:
        return scale
    return 1.2533 * float(np.abs(x - np.median(x)).mean())


def no_signal_zeros(values: FloatArray, run_min: int) -> BoolArray:
    """Runs of at least ``run_min`` exact zeros in a series whose other readings lie far from
    0 (``NO_SIGNAL_Z`` robust SDs): what a monitor sends when a sensor is off (MIMIC numerics,
    bedside exports). For a code no catalogue gives a plausible range; a series that really
    goes to 0 from a level near it (a pain score, a urine output) is not matched.

    >>> no_signal_zeros(np.array([97.0, 96, 0, 0, 0, 97, 0, 98, 97]), 3).astype(int).tolist()
    [0, 0, 1, 1, 1, 0, 0, 0, 0]
    """
    zero = values == 0
    if run_min < 1 or not zero.any():
        return np.zeros(values.shape, dtype=np.bool_)
    others = values[~zero & np.isfinite(values)]
    if others.size < run_min:
        return np.zeros(values.shape, dtype=np.bool_)
    if abs(float(np.median(others))) <= NO_SIGNAL_Z * robust_scale(others):
        return np.zeros(values.shape, dtype=np.bool_)
    out: BoolArray = zero & (run_lengths(zero) >= run_min)
    return out


def run_lengths(mask: BoolArray) -> IntArray:
    """Length of the run of consecutive True each element belongs to (0 where False).

    >>> run_lengths(np.array([True, False, True, True, True, False]))
    array([1, 0, 3, 3, 3, 0])
    """
    out = np.zeros(mask.shape, dtype=np.int64)
    if not mask.any():
        return out
    padded = np.concatenate(([False], mask, [False]))
    change = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = change[::2], change[1::2]
    lengths = ends - starts
    out[mask] = np.repeat(lengths, lengths)
    return out


def critical_mask(values: FloatArray, critical: tuple[float, float] | None) -> BoolArray:
    """True where a value is outside the critical range (rule-critical lab)."""
    if critical is None:
        return np.zeros(values.shape, dtype=np.bool_)
    low, high = critical
    return (values < low) | (values > high)


def critical_bound(values: FloatArray, critical: tuple[float, float]) -> FloatArray:
    """The critical bound each value crossed (low bound below the range, high bound above)."""
    low, high = critical
    return np.where(values < low, low, high)


def transitions(
    scores: IntArray, dwell: int, times: IntArray | None = None, dwell_ms: float = 0
) -> IntArray:
    """Positions where a series enters a new band and stays there.

    Staying means at least ``dwell`` consecutive readings and, when ``times`` are given, at
    least ``dwell_ms`` from the run's first reading to the first reading after it (or to its own
    last reading at the end of the series). Hysteresis: runs that do not stay never change the
    confirmed band, so a value flickering across a boundary is no transition at all, and a
    return to the confirmed band after such a flicker is none either. The series starts in the
    band of its first reading.

    >>> transitions(np.array([0, 1, 0, 1, 0, 1, 1, 1, 1, 0]), 3)
    array([5])
    """
    if scores.size == 0:
        return np.empty(0, dtype=np.int64)
    change = np.flatnonzero(scores[1:] != scores[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [scores.size]))
    kept = ends - starts >= max(dwell, 1)
    if times is not None and dwell_ms > 0:
        after = times[np.minimum(ends, scores.size - 1)]
        kept &= after - times[starts] >= dwell_ms
    kept_starts = starts[kept]
    kept_values = scores[kept_starts]
    previous = np.concatenate(([scores[0]], kept_values[:-1]))
    moved: IntArray = kept_starts[kept_values != previous].astype(np.int64)
    return moved
