"""Overflow-safe mean and standard deviation of groups of float64 values.

Each group is scaled by its largest magnitude before summing, so that sums and squares stay
finite for any finite input (two readings of 1.79e308 used to sum to infinity and commit a
NaN mean). A standard deviation that itself exceeds the float range (values spanning both
extremes) saturates at the largest float instead of becoming infinite.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_LARGEST = float(np.finfo(np.float64).max)


def group_mean_std(
    values: FloatArray, groups: IntArray, starts: IntArray, counts: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Per-group mean and sample standard deviation (``ddof=1``; 0.0 for one value).

    ``values`` are sorted by group; ``groups`` holds each value's dense group number (0, 1, …
    in the same order) and ``starts``/``counts`` each group's first index and size.
    """
    mins = np.minimum.reduceat(values, starts)
    maxs = np.maximum.reduceat(values, starts)
    scale = np.maximum(np.abs(mins), np.abs(maxs))
    scale[scale == 0.0] = 1.0
    scaled = values / scale[groups]  # every |scaled| <= 1
    means = np.add.reduceat(scaled, starts) / counts
    # One correction pass: the naive sum loses digits on long runs of near-equal values.
    means += np.add.reduceat(scaled - means[groups], starts) / counts
    deviations = scaled - means[groups]
    squares = np.add.reduceat(deviations * deviations, starts)
    scaled_std = np.sqrt(squares / np.maximum(counts - 1, 1))
    with np.errstate(over="ignore"):
        stds = np.minimum(scaled_std * scale, _LARGEST)
        means = np.clip(means * scale, mins, maxs)
    stds[counts == 1] = 0.0
    return means, stds
