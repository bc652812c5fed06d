"""The retention rules ``classify_patient`` runs, in order. A new rule is a new module and a
line here.

``SERIES_RULES`` judge each series on its own; ``FOLLOW_UP_RULES`` run after them (and after
the patient-level multivariate detector) on series that know what was kept.
"""

from __future__ import annotations

from medsleep.detect.context import Context
from medsleep.detect.contract import RetentionRule
from medsleep.detect.critical import CriticalValues
from medsleep.detect.news2 import News2Bands
from medsleep.detect.plausibility import Plausibility, RateOfChange
from medsleep.detect.reference import ReferenceRange
from medsleep.detect.rhythm import BeatSpikes
from medsleep.detect.source import SourceJudgement
from medsleep.detect.statistical import Detector
from medsleep.detect.waveform import WaveformDiscords

SERIES_RULES: tuple[RetentionRule, ...] = (
    Plausibility(),
    RateOfChange(),
    News2Bands(),
    CriticalValues(),
    ReferenceRange(),
    SourceJudgement(),
    Detector(),
    BeatSpikes(),
    WaveformDiscords(),
)
FOLLOW_UP_RULES: tuple[RetentionRule, ...] = (Context(),)
