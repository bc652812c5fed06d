"""How a series is timed: beat by beat, by the beats themselves, or on a sampling clock."""

from __future__ import annotations

import numpy as np

from medsleep.detect.rules import mad_scale

BEAT_LEVEL_SECONDS = 2.0
"""Median interval at or below which a series is read beat by beat (30 or more a minute)."""


BEAT_TIMING_CV = 0.01
"""Intervals that vary by at least this robust coefficient of variation are a beat's own
timing (heart rate variability: 0.047 in ``mitdb100``, 0.02-0.1 in RR series generally); a
monitor sampling once a second has 0. A short-long pair is a beat-by-beat shape: in readings
on a clock (averaged over several beats) it is noise."""


def is_beat_timed(times: np.ndarray) -> bool:
    """True when the intervals between readings vary like heartbeats, not like a clock."""
    if times.size < 3:
        return False
    gaps = np.diff(times).astype(np.float64)
    median = float(np.median(gaps))
    if median <= 0:
        return False
    return mad_scale(gaps) / median >= BEAT_TIMING_CV


def is_beat_level(times: np.ndarray) -> bool:
    """True when the median interval between readings is at most ``BEAT_LEVEL_SECONDS``."""
    if times.size < 2:
        return False
    return float(np.median(np.diff(times))) <= BEAT_LEVEL_SECONDS * 1000
