"""Detector rule: the code's PyOD detector over its plausible readings, flags grown into runs.

A code no catalogue knows gets the policy's ``[statistical]`` detector; its reasons are named
``statistical:<model>`` (and ``statistical-segment:<model>``) so they say no clinical rule
applied.
A periodic series (raw samples of a wave, ``detect.period``) is the waveform rule's to judge.
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.detect.detectors import detect_series
from medsleep.detect.rules import run_lengths
from medsleep.detect.timing import is_beat_level
from medsleep.policy import Policy

STATISTICAL_RULES = ("statistical", "statistical-segment")
EVENT_READINGS = 2
"""A detector flag counts when its run of deviating readings is at least this long."""
BEAT_EVENT_READINGS = 3
"""... and at beat level (a reading at least every 2 s) this long."""


class Detector:
    name = "detector"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        cp = series.rules
        # A sampled wave's extremes, and its runs above the baseline, are its cycle, not
        # events: its shape is the waveform rule's to judge (detect.waveform).
        if not cp.detector or series.period:
            return []
        prefix, segment = ("detector", "segment") if cp.clinical else STATISTICAL_RULES
        ok_pos = np.flatnonzero(series.ok).astype(np.int64)
        flags = detect_series(
            series.values[ok_pos],
            cp.detector,
            cp.contamination,
            cp.min_deviation_z,
            times=series.times[ok_pos],
        )
        positions, scores = flags.positions, flags.scores
        grown, grown_z = flags.segment, flags.segment_z
        lone = np.zeros(positions.size, dtype=np.bool_)
        if positions.size:
            # Events, not points. Beat by beat, a lone flagged beat is rhythm (the rhythm
            # rule's job) or sinus variability: only runs count. Slower, a lone flag is kept
            # but gets no context: its neighbours are normal readings, summarised anyway.
            member = np.zeros(ok_pos.size, dtype=np.bool_)
            member[np.concatenate((positions, flags.segment))] = True
            runs = run_lengths(member)
            if is_beat_level(series.times[ok_pos]):
                in_run = runs[positions] >= BEAT_EVENT_READINGS
                positions, scores = positions[in_run], scores[in_run]
                grown_in = runs[grown] >= BEAT_EVENT_READINGS
                grown, grown_z = grown[grown_in], grown_z[grown_in]
                lone = lone[in_run]
            else:
                lone = runs[positions] < EVENT_READINGS
        rule = f"{prefix}:{cp.detector}"
        return [
            Finding(ok_pos[positions[~lone]], "detector", rule, scores[~lone], flags.threshold),
            Finding(
                ok_pos[positions[lone]],
                "detector",
                rule,
                scores[lone],
                flags.threshold,
                anchor=False,
            ),
            Finding(
                ok_pos[grown],
                "detector",
                f"{segment}:{cp.detector}",
                grown_z,
                cp.min_deviation_z,
            ),
        ]
