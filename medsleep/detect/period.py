"""The cycle of a periodic series: raw samples of a wave repeat one shape, numerics do not.

A series is periodic when its autocorrelation, after the slow trend is removed, has a peak of
at least ``PERIODICITY`` at a lag of ``MIN_PERIOD``..``MAX_PERIOD`` readings and the series
holds ``MIN_CYCLES`` such cycles. Vital-sign numerics (a minute's or a beat's value) are not:
their extremes are events, where a wave's extremes are its cycle.
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.rules import FloatArray

MIN_PERIOD = 16
"""Fewest readings a cycle: a sampled wave. Beat-to-beat numerics oscillate with breathing
over 3-6 beats, well below it."""

MAX_PERIOD = 500
"""Most readings a cycle."""

MIN_CYCLES = 8
"""Cycles the series must hold for its period to count."""

PERIODICITY = 0.7
"""Autocorrelation at the period (after the trend is removed) that makes a series periodic
(``ucr135``, a real arterial pressure wave: 0.94)."""


FUNDAMENTAL_SHARE = 0.9
"""The cycle is the top of the first hump of the autocorrelation that reaches this share of
the highest one."""


def period_of(values: FloatArray) -> tuple[int, float]:
    """The series' cycle in readings and its autocorrelation there, or (0, 0.0) when it has
    none in ``MIN_PERIOD``..``MAX_PERIOD`` with ``MIN_CYCLES`` cycles in the series.

    >>> t = np.arange(2000)
    >>> period_of(50 + 10 * np.sin(2 * np.pi * t / 40) + 0.01 * t)[0]
    40
    >>> period_of(np.random.default_rng(0).normal(size=2000))
    (0, 0.0)
    """
    n = values.size
    top = min(MAX_PERIOD, n // MIN_CYCLES)
    if top <= MIN_PERIOD:
        return 0, 0.0
    detrended = values - _moving_mean(values, min(n, 2 * MAX_PERIOD + 1) | 1)
    detrended -= detrended.mean()
    spectrum = np.fft.rfft(detrended, n=2 * n)
    ac = np.fft.irfft(spectrum * np.conj(spectrum))[: top + 1]
    if ac[0] <= 0:
        return 0, 0.0
    ac /= ac[0]
    below = np.flatnonzero(ac[1:] < 0)  # past the first zero crossing: the next cycle
    if below.size == 0:
        return 0, 0.0
    start = int(below[0]) + 1
    # the fundamental: the first lag nearly as correlated as the best one (a cycle of 4.5
    # beats correlates at 27 too)
    peak = float(ac[start:].max())
    period = start + int(np.argmax(ac[start:] >= FUNDAMENTAL_SHARE * peak))
    while period + 1 < ac.size and ac[period + 1] > ac[period]:
        period += 1  # to the top of that hump
    if period < MIN_PERIOD or ac[period] < PERIODICITY:
        return 0, 0.0
    return period, float(ac[period])


def _moving_mean(values: FloatArray, window: int) -> FloatArray:
    """Centred moving mean over ``window`` (odd) readings, shorter at the ends."""
    half = window // 2
    sums = np.concatenate(([0.0], np.cumsum(values)))
    idx = np.arange(values.size)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, values.size)
    out: FloatArray = (sums[hi] - sums[lo]) / (hi - lo)
    return out
