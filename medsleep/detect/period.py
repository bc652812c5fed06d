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

MAX_PERIOD = 2000
"""Most readings a cycle (an ECG at 1,000 samples a second and 30 beats a minute)."""

MIN_CYCLES = 8
"""Cycles the series must hold for its period to count."""

PERIODICITY = 0.7
"""Autocorrelation at the period (after the trend is removed) that makes a series periodic
(``ucr135``, a real arterial pressure wave: 0.94)."""


SMOOTHING = (1, 16, 64)
"""Widths (readings) over which a series is smoothed, in turn, to find its cycle."""

SMOOTHING_HINT = 0.2
"""... only when unsmoothed it already correlates this much somewhere past its first zero
crossing (an ECG with a wide ectopic beat in 60: 0.40-0.45; the generator's one-a-minute
vitals: 0.15 at the 90th percentile), so that numerics pay for one pass, not three."""

REPEAT = 0.6
"""Autocorrelation at two cycles that a cycle found smoothed must also reach."""

FUNDAMENTAL_SHARE = 0.9
"""The cycle is the top of the first hump of the autocorrelation that reaches this share of
the highest one."""


def period_of(values: FloatArray) -> tuple[int, float]:
    """The series' cycle in readings and its autocorrelation there, or (0, 0.0) when it has
    none in ``MIN_PERIOD``..``MAX_PERIOD`` with ``MIN_CYCLES`` cycles in the series.

    The series is read by rank, so that a flush of the line or a few tall, wide ectopic beats do
    not outweigh the cycles around them. A spiky wave (an ECG's R waves, a few samples wide,
    moving by more than that from beat to beat) hardly correlates with itself a cycle on: it is
    looked at again smoothed over each of ``SMOOTHING`` readings, and counts when its cycle is
    at least ``4 x`` that long and repeats twice (``REPEAT`` at two cycles).

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
    detrended = values - moving_mean(values, min(n, 2 * MAX_PERIOD + 1) | 1)
    hint = 0.0
    for width in SMOOTHING:
        if width > 1 and (4 * width > top or hint < SMOOTHING_HINT):
            break
        # by rank: a flush of the line at 300 mmHg, or one tall, wide beat, does not outweigh
        # the cycles around it
        smoothed = detrended if width == 1 else moving_mean(detrended, width | 1)
        x = np.argsort(np.argsort(smoothed)).astype(np.float64)
        ac = _autocorrelation(x, min(2 * top, n - 1))
        period, hump = _first_cycle(ac, top)
        if width == 1:
            hint = hump
        if not period or ac[period] < PERIODICITY:
            continue
        if width == 1 or (period >= 4 * width and ac[min(2 * period, ac.size - 1)] >= REPEAT):
            return period, float(ac[period])
    return 0, 0.0


def _autocorrelation(x: FloatArray, lags: int) -> FloatArray:
    """Autocorrelation of ``x`` at lags 0..``lags`` (all zeros for a constant ``x``)."""
    centred = x - x.mean()
    size = 1 << (x.size + lags).bit_length()  # no wrap-around up to ``lags``
    spectrum = np.fft.rfft(centred, n=size)
    ac: FloatArray = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=size)[: lags + 1]
    return ac / ac[0] if ac[0] > 0 else np.zeros_like(ac)


def _first_cycle(ac: FloatArray, top: int) -> tuple[int, float]:
    """The cycle and the hump: past the first zero crossing, the first lag up to ``top``
    nearly as correlated as the best one (a cycle of 4.5 beats correlates at 27 too), at the
    top of its hump (0 if none or shorter than ``MIN_PERIOD``); and the best autocorrelation
    there (0.0 if none)."""
    below = np.flatnonzero(ac[1 : top + 1] < 0)
    if below.size == 0:
        return 0, 0.0
    start = int(below[0]) + 1
    window = ac[start : top + 1]
    best = float(window.max())
    period = start + int(np.argmax(window >= FUNDAMENTAL_SHARE * best))
    while period + 1 <= top and ac[period + 1] > ac[period]:
        period += 1
    return (period if period >= MIN_PERIOD else 0), (best if start < top else 0.0)


def moving_mean(values: FloatArray, window: int) -> FloatArray:
    """Centred moving mean over ``window`` (odd) readings, shorter at the ends."""
    half = window // 2
    sums = np.concatenate(([0.0], np.cumsum(values)))
    idx = np.arange(values.size)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, values.size)
    out: FloatArray = (sums[hi] - sums[lo]) / (hi - lo)
    return out
