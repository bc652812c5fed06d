"""Waveform rule: in a periodic series, the stretch that no nearby cycle of it matches.

Raw samples of a pressure or plethysmograph wave, or of a respiration trace, repeat one shape
cycle after cycle. What goes wrong in them is a shape — a beat of lower amplitude, a damped or
flattened trace, a small extra bump, a stretched cycle, a few noisy samples — whose values stay
inside the series' ordinary range, so neither the baseline gate of the detectors nor the rhythm
rule's neighbours see it. This rule is a *discord* search of a matrix profile (Yeh et al., ICDM
2016; PyOD's ``MatrixProfile``): every stretch of a quarter cycle is compared with every stretch
up to ``SEARCH_CYCLES`` cycles either side of it, and a stretch whose nearest match is far
further than the series' usual nearest match is an anomaly. Two choices differ from PyOD's
model, which compares each stretch with the whole series after z-normalising both:

- stretches are compared after removing their mean only, not scaling them, so an amplitude
  change (a weaker beat) counts as a change of shape;
- the search is local (a few cycles either side), so its cost grows with the series' length
  times its cycle, not with the square of its length, and a slow change of shape over hours is
  the patient's own drift, not a discord.

The rule applies only where a series is periodic (``detect.period``); vital-sign numerics (a
minute's or a beat's value) are not, so they never reach it. Of each discord it keeps the
``KEPT_PER_DISCORD`` readings that differ most from the matching stretch: where the shape broke.
A beat that comes early or not at all leaves every stretch matched by some other; it shows in
the cycle's length instead (``irregular_cycles``: one peak a cycle, each cycle's length against
its neighbours').
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.detect.detectors import resolution
from medsleep.detect.period import moving_mean
from medsleep.detect.rules import FloatArray, IntArray, mad_scale
from medsleep.policy import Policy

WINDOW_SHARE = 0.25
"""The compared stretch is this share of a cycle: short enough that a few noisy samples or a
small bump weigh in it, long enough to hold a shape."""

SEARCH_CYCLES = 8
"""The nearest match is looked for up to this many cycles either side (at 4, a rare pairing of
a short, strong beat with its neighbours found no close match in 1 of 5 generated waves)."""

DISCORD_Z = 12.0
"""A stretch is a discord when its distance to its nearest match is this many robust SDs above
the median stretch's. Calibrated on ``ucr135``'s normal part (a real arterial pressure wave)
with seven kinds of injected change, 3 each: every lower-amplitude beat, flattened trace, extra
bump, spike, level step, stretched cycle and noise burst reached 28.8 or more, the cycles far
from them at most 5.5; on generated pulse waves with beat-to-beat variability the weakest
change reached 17.5 and plain waves at most 8.9 (30 seeds). A premature beat (one cycle in 65 %
of its time) is caught in every case of ``benchmarks/quality.py --cases waveform`` too."""

FINE_PERIOD = 256
"""Cycles of more readings than this (an ECG sampled at 500 a second) are compared averaged in
blocks, to at most this many a cycle: the search costs the series' length times its cycle."""

KEPT_PER_DISCORD = 3
"""Readings kept of each discord: those that differ most from its nearest match."""


def nearest_match(values: FloatArray, period: int, window: int) -> tuple[FloatArray, IntArray]:
    """For each stretch of ``window`` readings: the RMS distance (means removed) to its nearest
    stretch within ``SEARCH_CYCLES`` cycles either side, not overlapping it, and that stretch's
    offset from it (negative: before it). A stretch near either end of the series looks as far
    further on the other side as it cannot look on its own, so every stretch has as many
    candidates and the ends are not discords for want of them."""
    n = values.size
    starts = n - window + 1
    best = np.full(starts, np.inf)
    offset = np.zeros(starts, dtype=np.int64)
    reach = SEARCH_CYCLES * period + window  # lags window..reach-1 either side
    for lag in range(window, min(2 * reach - window, starts)):
        # distance of stretch i to stretch i + lag, for every i, from running sums of the
        # sample-by-sample difference (the means' difference taken out)
        k = starts - lag
        # beyond the reach, only the stretches within (2 reach - window - lag) of an end
        edge = k if lag < reach else min(k, 2 * reach - window - lag)
        step = values[: n - lag] - values[lag:]
        s1 = np.concatenate(([0.0], np.cumsum(step)))
        s2 = np.concatenate(([0.0], np.cumsum(step * step)))
        d1 = s1[window : window + k] - s1[:k]
        d2 = np.maximum(s2[window : window + k] - s2[:k] - d1 * d1 / window, 0.0)
        ahead, behind = best[:edge], best[starts - edge :]
        closer = d2[:edge] < ahead
        ahead[closer] = d2[:edge][closer]
        offset[:edge][closer] = lag
        closer = d2[k - edge :] < behind
        behind[closer] = d2[k - edge :][closer]
        offset[starts - edge :][closer] = -lag
    distance: FloatArray = np.sqrt(best / window)
    return distance, offset


def discords(values: FloatArray, period: int) -> tuple[IntArray, FloatArray]:
    """Positions of the readings kept for the discords of a series with a cycle of ``period``
    readings (``period.period_of``; 0: none) and each one's z-score."""
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))
    if not period:
        return none
    # a long cycle is compared block-averaged (``FINE_PERIOD``), its kept readings picked at
    # full resolution
    step = -(-period // FINE_PERIOD)
    coarse = values[: values.size // step * step].reshape(-1, step).mean(axis=1)
    cycle = int(round(period / step))
    window = max(4, int(round(cycle * WINDOW_SHARE)))
    distance, offset = nearest_match(coarse, cycle, window)
    # an exactly repeating wave has a spread of 0: then one measurement step is the scale
    scale = max(mad_scale(distance), resolution(values) / 2)
    if scale <= 0:
        return none
    z = (distance - np.median(distance)) / scale
    positions: list[IntArray] = []
    scores: list[FloatArray] = []
    taken: list[int] = []
    for start in np.flatnonzero(z >= DISCORD_Z)[np.argsort(-z[z >= DISCORD_Z], kind="stable")]:
        if any(abs(int(start) - other) < cycle for other in taken):
            continue  # one discord a cycle: the strongest stretch of it
        taken.append(int(start))
        first, length = int(start) * step, window * step
        other = first + int(offset[start]) * step
        here, match = values[first : first + length], values[other : other + length]
        # the median difference, not the mean, is taken out: a bump or a burst of noise
        # would move the mean and spread its own mismatch over the whole stretch
        difference = here - match
        mismatch = np.abs(difference - np.median(difference))
        worst = np.sort(np.argsort(-mismatch, kind="stable")[:KEPT_PER_DISCORD]) + first
        positions.append(worst.astype(np.int64))
        scores.append(np.full(worst.size, z[start]))
    if not positions:
        return none
    return np.concatenate(positions), np.concatenate(scores)


CYCLE_Z = 8.0
"""A cycle is irregular when the log of its length against its neighbours' median is this many
robust SDs from the usual (beat-to-beat variability of a few per cent sets the SD)..."""

CYCLE_RATIO = 1.3
"""... and at least this much longer, or this much shorter, than they are: a dropped beat
(a pause) or a premature one."""

PEAK_SHARE = 0.5
"""A cycle's peak stands above the wave's one-cycle mean by at least this share of how far its
highest tenth does."""

CYCLE_NEIGHBOURS = 4
"""Cycles each side whose median length a cycle is measured against."""


def cycle_peaks(values: FloatArray, period: int) -> IntArray:
    """One position a cycle: the highest reading of the wave (smoothed over a 32nd of a cycle),
    taken greedily with at least 0.6 cycle between two."""
    smooth = moving_mean(values, max(1, period // 32) | 1)  # lightly: an R wave stays the top
    inner = smooth[1:-1]
    candidates = np.flatnonzero((inner > smooth[:-2]) & (inner >= smooth[2:])) + 1
    # a peak stands well above its cycle's mean (not a ripple on a pause's plateau)
    above = smooth - moving_mean(values, period | 1)
    candidates = candidates[above[candidates] >= PEAK_SHARE * np.quantile(above, 0.9)]
    chosen: list[int] = []
    gap = int(0.6 * period)
    blocked = np.zeros(values.size + 1, dtype=np.bool_)
    for position in candidates[np.argsort(-smooth[candidates], kind="stable")]:
        if blocked[position]:
            continue
        chosen.append(int(position))
        blocked[max(0, position - gap) : position + gap + 1] = True
    return np.sort(np.array(chosen, dtype=np.int64))


def irregular_cycles(values: FloatArray, period: int) -> tuple[IntArray, FloatArray]:
    """Readings kept for cycles much longer or shorter than their neighbours (a dropped or a
    premature beat in a pressure wave): the middle of the irregular cycle and the peak that
    ends it (the premature beat's own), with the cycle's z-score."""
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))
    if not period:
        return none
    peaks = cycle_peaks(values, period)
    if peaks.size < 2 * CYCLE_NEIGHBOURS + 2:
        return none
    lengths = np.diff(peaks).astype(np.float64)
    padded = np.pad(lengths, CYCLE_NEIGHBOURS, mode="reflect")
    around = np.lib.stride_tricks.sliding_window_view(padded, 2 * CYCLE_NEIGHBOURS + 1)
    others = np.delete(around, CYCLE_NEIGHBOURS, axis=1)
    ratio = np.log(lengths / np.median(others, axis=1))
    z = np.abs(ratio - np.median(ratio)) / max(mad_scale(ratio), 1e-3)
    odd = np.flatnonzero((z >= CYCLE_Z) & (np.abs(ratio) >= np.log(CYCLE_RATIO)))
    # the first and last cycles may be cut by the series' ends, their peak another feature
    odd = odd[(odd > 0) & (odd < lengths.size - 1)]
    if odd.size == 0:
        return none
    middles, ends = (peaks[odd] + peaks[odd + 1]) // 2, peaks[odd + 1]
    positions, first = np.unique(np.concatenate((middles, ends)), return_index=True)
    return positions.astype(np.int64), np.concatenate((z[odd], z[odd]))[first]


class WaveformDiscords:
    name = "waveform"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        # Statistical like the detectors: off where the policy turns a code's detector off.
        if not series.rules.detector or not series.period:
            return []
        ok_pos = np.flatnonzero(series.ok).astype(np.int64)
        values = series.values[ok_pos]
        positions, z = discords(values, series.period)
        cycles, cycle_z = irregular_cycles(values, series.period)
        # An irregular cycle's two readings need no context: they mark where the beat came
        # early or failed to come.
        return [
            Finding(ok_pos[positions], "detector", "waveform-discord", z, DISCORD_Z),
            Finding(ok_pos[cycles], "detector", "waveform-cycle", cycle_z, CYCLE_Z, anchor=False),
        ]
