"""Detection: clinical guard rules and PyOD detectors, pure functions on one patient's frame.

``classify_patient`` decides which readings to retain and why; ``group_episodes`` groups the
retained ones into episodes; ``news2_aggregate`` is the patient's NEWS2 score over time.
"""

from medsleep.detect.classify import PatientDecisions, classify_patient
from medsleep.detect.detectors import (
    DETECTOR_NAMES,
    MIN_DETECTOR_READINGS,
    DetectorFlags,
    check_detector_name,
    detect_aligned,
    detect_series,
    warm_up_detectors,
)
from medsleep.detect.episodes import Episode, group_episodes, news2_aggregate
from medsleep.detect.reasons import ARTIFACT_BAND, KINDS
from medsleep.detect.rules import news2_scores

__all__ = [
    "ARTIFACT_BAND",
    "DETECTOR_NAMES",
    "KINDS",
    "MIN_DETECTOR_READINGS",
    "DetectorFlags",
    "Episode",
    "PatientDecisions",
    "check_detector_name",
    "classify_patient",
    "detect_aligned",
    "detect_series",
    "group_episodes",
    "news2_aggregate",
    "news2_scores",
    "warm_up_detectors",
]
