"""The retention-rule contract: one series and its code policy in, findings (reasons) out.

Like PyOD's ``BaseDetector`` for detectors, every rule has the same small shape: a ``name`` and
``judge(series, policy) -> list[Finding]``. Rules never touch other series or shared arrays;
``classify_patient`` runs the registered rules (``detect.registry``) and turns their findings
into reason rows. Facts several rules need (which readings are plausible, their NEWS2
sub-scores) are computed once, lazily, on the ``Series``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
import numpy.typing as npt

from medsleep.detect.period import period_of
from medsleep.detect.rate import RateArtifacts, rate_artifacts
from medsleep.detect.rules import (
    NO_SCORE,
    BoolArray,
    FloatArray,
    IntArray,
    implausible_mask,
    news2_scores,
    no_signal_zeros,
    run_lengths,
)
from medsleep.detect.timing import is_beat_timed
from medsleep.policy import CodePolicy, Policy

ARTIFACT_RUN_BAND = -2
"""Band number of a reading inside a sensor-off run (``reasons.band_labels_of``)."""


@dataclass(frozen=True, eq=False)
class Series:
    """One code's readings of one patient, time-ordered, with the code's policy.

    ``anchors`` and ``kept`` are filled in for follow-up rules (context) only: which readings
    a rule or detector kept, and which are kept for any reason. ``interpretation`` and
    ``reference_range`` are the source's own judgement, when the frame carries it.
    """

    code: str
    times: IntArray
    values: FloatArray
    rules: CodePolicy
    artifact_run_min: int = 3
    anchors: BoolArray | None = None
    kept: BoolArray | None = None
    # The source's own judgement per reading (see fhir.judgement), when the frame has it.
    interpretation: npt.NDArray[np.object_] | None = None
    reference_range: npt.NDArray[np.object_] | None = None

    @property
    def size(self) -> int:
        return int(self.values.size)

    @cached_property
    def implausible(self) -> BoolArray:
        """Missing or outside the plausible range; for a code no catalogue knows (no range),
        runs of "no signal" zeros far from the series' level (``rules.no_signal_zeros``)."""
        mask = implausible_mask(self.values, self.rules.plausible)
        if self.rules.plausible is None:
            mask |= no_signal_zeros(self.values, self.artifact_run_min)
        return mask

    @cached_property
    def in_artifact_run(self) -> BoolArray:
        """Implausible readings in a run long enough to be a sensor-off stretch."""
        run = run_lengths(self.implausible) >= max(self.artifact_run_min, 1)
        out: BoolArray = self.implausible & run
        return out

    @cached_property
    def rate_artifacts(self) -> RateArtifacts:
        """Plausible readings that jumped out and back faster than the parameter can change."""
        return rate_artifacts(
            self.times, self.values, ~self.implausible, self.rules.max_step, self.rules.max_rate
        )

    @cached_property
    def ok(self) -> BoolArray:
        """Plausible readings that are no rate-of-change artifact: the only ones clinical rules
        and detectors look at."""
        out: BoolArray = ~self.implausible
        out[self.rate_artifacts.positions] = False
        return out

    @cached_property
    def period(self) -> int:
        """The cycle of the ok readings in readings when they are a sampled wave, else 0.
        Readings timed by the beats themselves are a rate or a pressure per beat, never a
        wave's samples, however regularly they swing (periodic breathing)."""
        if is_beat_timed(self.times[self.ok]):
            return 0
        return period_of(self.values[self.ok])[0]

    @cached_property
    def news2(self) -> IntArray:
        """NEWS2 sub-score per reading, ``NO_SCORE`` without bands or when an artifact."""
        sub = news2_scores(self.values, self.rules.bands)
        sub[~self.ok] = NO_SCORE
        return sub

    @cached_property
    def band(self) -> IntArray:
        """Summary band per reading: NEWS2 sub-score, ``ARTIFACT_RUN_BAND`` in a sensor-off run,
        ``NO_SCORE`` without bands. An isolated artifact takes the band around it so it does
        not split a summary."""
        if self.rules.bands and self.ok.any():
            # each reading takes the sub-score of the last ok one up to it, or of the first
            # (a forward then backward fill, in numpy: a pandas fill a series cost 7x as much)
            last_ok = np.maximum.accumulate(np.where(self.ok, np.arange(self.size), -1))
            band: IntArray = self.news2[np.where(last_ok < 0, np.argmax(self.ok), last_ok)]
        else:
            band = np.full(self.size, NO_SCORE, dtype=np.int64)
        band[self.in_artifact_run] = ARTIFACT_RUN_BAND
        return band


@dataclass(frozen=True)
class Finding:
    """Readings one rule keeps, for one reason: positions into the series, their scores and
    thresholds (one each, or one for all), and for context the position it is context of."""

    positions: IntArray
    kind: str
    rule: str
    scores: FloatArray | float = float("nan")
    thresholds: FloatArray | float = float("nan")
    context_of: IntArray | None = None
    # Whether these readings get context (rule and detector findings do, unless they are
    # lone points: the neighbours of one deviating reading are just normal readings).
    anchor: bool = True


class RetentionRule(Protocol):
    """A retention rule: judges one series and says which readings to keep, and why."""

    name: str

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        """Findings for ``series`` (empty when the rule does not apply to its code)."""
        ...
