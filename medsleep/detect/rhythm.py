"""Rhythm rule: in a beat-level series, a reading that stands out from both its neighbours.

A premature (ectopic) beat is shorter than the beats around it and is followed by a longer,
compensatory one: in beat-to-beat heart rate, a reading above both neighbours (a peak) next
to one below both (a trough); a dropped or blocked beat is a trough. Sinus rhythm changes
gradually, so its successive differences are small and seldom of opposite sign. A reading is
kept when it is a peak or trough by at least ``min_deviation_z`` robust SDs of the series' own
successive differences: scale-free, in readings, and the same gate the detectors use. A
premature beat with its pause is a *short-long pair*: the beat above the patient's local
rhythm, the pause below it. Measured against the median of the beats around the pair (about a
breath each way), respiratory sinus arrhythmia moves the reference and not the pair, so an
ectopic beat only a little faster than sinus (72-88/min among 70) stands out when its pause is
there. The trough right after such a peak is its compensatory pause and is left to context.

Beat level means readings come at least every ``BEAT_LEVEL_SECONDS`` (median interval): per
beat or per second. Short-long pairs are looked for only in readings timed by the beats
themselves (``is_beat_timed``), not in a monitor's once-a-second numerics. Below beat level
(one a minute) a single out-and-back reading may be noise or an artifact: it is kept, but
without context; several within ``CLUSTER_READINGS`` readings of each other are an
oscillation, an event, and get their context.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from medsleep.detect.contract import Finding, Series
from medsleep.detect.detectors import MIN_DETECTOR_READINGS
from medsleep.detect.rules import BoolArray, FloatArray, IntArray
from medsleep.detect.timing import is_beat_level, is_beat_timed
from medsleep.policy import Policy

MAX_GAP_INTERVALS = 3.0
"""A gap longer than this many median intervals breaks the succession of readings."""

CLUSTER_READINGS = 2
"""Below beat level, spikes this close (in readings) to another are one event."""

PAIR_CONTEXT_BEATS = 4
"""A short-long pair is measured against the median of this many beats on each side of it
(the pair itself left out): about one breath each way, so respiratory sinus arrhythmia and
wander move the reference, not the pair's deviation."""

PAIR_GATE_SHARE = 0.7
"""A pair is two readings that both deviate, one up and one down; against the local rhythm it
passes the gate when its drop reaches this share of ``min_deviation_z``. Calibrated, measured
with the pair's neighbour measure beside it: every labelled beat of the real ``mitdb100``
(34 atrial premature beats) and of each half of it (every other beat) at any share from 0.6
to 0.8; on subtle generated ectopics (72-88/min among ~70) 0.853 of 143 at 0.7, 0.874 at
0.625, 0.783 without this measure; on plain sinus rhythm with Gaussian beat noise 0.05 % of
beats at 0.7 and 0.14 % at 0.625."""


PRESSURE_PARAMETERS = frozenset({"systolic", "diastolic", "mean_pressure"})
"""Catalogue parameters in which a premature beat falls (less filling) and the beat after its
pause rises (more filling, post-extrasystolic potentiation): the mirror of heart rate."""


INTERVAL_CORRELATION = 0.5
"""A beat-timed series whose values follow the time since the reading before (correlation at
least this) holds the beats' intervals (RR in ms or s), whatever its code: a premature beat is
a short interval, then the long pause: the mirror of heart rate (which follows their inverse:
-1.0 in ``mitdb100``)."""


def _interval_like(values: FloatArray, times: IntArray) -> bool:
    gaps = np.diff(times).astype(np.float64)
    if gaps.size < 3 or np.ptp(gaps) == 0 or np.ptp(values[1:]) == 0:
        return False
    return float(np.corrcoef(values[1:], gaps)[0, 1]) >= INTERVAL_CORRELATION


def _robust_step(steps: FloatArray) -> float:
    # The typical size of a step (differences centre on 0 by nature): 1.4826 x median |d|,
    # or the mean |d| when most steps are 0 (integer-valued monitors).
    step = np.abs(steps)
    median = float(np.median(step))
    return 1.4826 * median if median > 0 else 1.2533 * float(step.mean())


def local_residual(values: FloatArray, beats: int = PAIR_CONTEXT_BEATS) -> FloatArray:
    """Each reading minus the median of the ``beats`` readings before the pair it may open
    (itself and the next) and the ``beats`` after it (edges repeat the end readings).

    >>> local_residual(np.array([70.0, 72, 70, 72, 70, 78, 62, 70, 72, 70, 72]), 2).tolist()
    [0.0, 2.0, 0.0, 1.0, 0.0, 7.0, -9.0, -1.0, 0.0, -1.0, 0.0]
    """
    n = values.size
    padded = np.pad(values, beats + 1, mode="edge")
    windows = sliding_window_view(padded, 2 * beats + 3)[:n]  # reading k at column beats + 1
    around = np.concatenate((windows[:, :beats], windows[:, beats + 3 :]), axis=1)
    return values - np.median(around, axis=1)


def spike_z(values: FloatArray, pairs: bool = True) -> FloatArray:
    """How far each reading stands out from *both* neighbours, in robust SDs of the series'
    successive differences (0 at the ends and where it lies between them); for the first beat
    of a short-long pair, its pair's drop when that is more (with ``pairs``: beat by beat,
    where a pair is a premature beat; a minute apart it is noise).

    A pair's drop is measured against its neighbours (the beat's rise plus the pause's depth)
    and against the series less its local rhythm (``local_residual``: the lesser of the beat's
    rise and the pause's depth, twice, in robust SDs of the residual's own steps, over
    ``PAIR_GATE_SHARE``: it meets a gate at that share of it); the larger counts.

    >>> spike_z(np.array([70.0, 71.0, 70.0, 71.0, 95.0, 60.0, 70.0, 71.0])).round(1).tolist()
    [0.0, 0.7, 0.7, 0.0, 22.9, 6.7, 0.0, 0.0]
    >>> spike_z(np.array([70.0, 71, 70, 71, 70, 76, 65, 70, 71, 70, 71, 70])).round(1).tolist()
    [0.0, 0.7, 0.7, 0.7, 0.7, 10.6, 3.4, 0.0, 0.7, 0.7, 0.7, 0.0]
    """
    z = np.zeros(values.size, dtype=np.float64)
    if values.size < 3:
        return z
    d = np.diff(values)
    scale = _robust_step(d)
    if scale <= 0:
        return z
    up = np.minimum(d[:-1], -d[1:])  # above both neighbours
    down = np.minimum(-d[:-1], d[1:])  # below both neighbours
    z[1:-1] = np.maximum(np.maximum(up, down), 0.0) / scale
    if not pairs:
        return z
    # Short-long pair at k, measured twice. Against its neighbours: up into k (a), down into
    # the pause (b), up out of it (c); the pause's depth adds to the beat's rise, so the pair
    # stands out by min(b, a + c) (what finds pairs whose neighbours are missing readings).
    a, b, c = d[:-2], -d[1:-1], d[2:]
    z[1:-2] = np.maximum(z[1:-2], np.where((a > 0) & (c > 0), np.minimum(b, a + c), 0.0) / scale)
    # Against the local rhythm: k above it and k + 1 below it.
    r = local_residual(values)
    r_scale = _robust_step(np.diff(r))
    if r_scale <= 0:
        return z
    pair = 2 * np.maximum(np.minimum(r[:-1], -r[1:]), 0.0) / (r_scale * PAIR_GATE_SHARE)
    z[1:-1] = np.maximum(z[1:-1], pair[1:])
    return z


def _between_neighbours(ok_pos: IntArray, times: IntArray) -> BoolArray:
    """Readings whose plausible neighbours are their real neighbours: no implausible reading
    and no gap longer than ``MAX_GAP_INTERVALS`` median intervals on either side. Across a
    sensor-off run or a gap the readings are not successive, and their difference means
    nothing (a monitor settling after it was reconnected is not a spike)."""
    out = np.zeros(ok_pos.size, dtype=np.bool_)
    if ok_pos.size < 3:
        return out
    gaps = np.diff(times)
    limit = MAX_GAP_INTERVALS * max(float(np.median(gaps)), 1.0)
    step_ok = (np.diff(ok_pos) == 1) & (gaps <= limit)
    out[1:-1] = step_ok[:-1] & step_ok[1:]
    return out


class BeatSpikes:
    name = "rhythm"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        cp = series.rules
        ok_pos = np.flatnonzero(series.ok).astype(np.int64)
        # Statistical like the detectors: off where the policy turns a code's detector off.
        # A sampled wave's samples are no beats (an ECG's every R wave stands out from both
        # neighbours): its shape is the waveform rule's.
        if not cp.detector or ok_pos.size < MIN_DETECTOR_READINGS or series.period:
            return []
        times = series.times[ok_pos]
        beat_level = is_beat_level(times)
        per_beat = beat_level and is_beat_timed(times)
        # A premature beat is a rise in a rate and a fall in a pressure: a pressure read beat
        # by beat is read mirrored, so that its pairs too are "the beat up, the next one down".
        values = series.values[ok_pos]
        mirrored = per_beat and (
            cp.parameter in PRESSURE_PARAMETERS or _interval_like(values, times)
        )
        v = -values if mirrored else values
        z = spike_z(v, pairs=per_beat)
        hit = (z >= cp.min_deviation_z) & _between_neighbours(ok_pos, times)
        lone = np.zeros(hit.size, dtype=np.bool_)
        if not beat_level:
            # Slower than beat by beat, one out-and-back reading is kept but gets no context;
            # an oscillation (several close together) is an event and does.
            near = np.convolve(hit.astype(np.int64), np.ones(2 * CLUSTER_READINGS + 1), "same")
            lone = hit & (near < 2)
        peak = hit & (v > np.roll(v, 1))
        # The compensatory pause right after a premature beat (in a pressure, the stronger beat
        # after it) belongs to it: context, not an event of its own. Other troughs (a dropped
        # or blocked beat) are.
        after_peak = np.concatenate(([False], peak[:-1]))
        hit &= peak | ~after_peak
        gate = cp.min_deviation_z
        event, point = hit & ~lone, hit & lone
        return [
            Finding(ok_pos[event], "detector", "rhythm-spike", z[event], gate),
            Finding(ok_pos[point], "detector", "rhythm-spike", z[point], gate, anchor=False),
        ]
