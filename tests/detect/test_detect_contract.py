"""The retention-rule contract: every registered rule judges one series and returns findings
that point into it, with a known kind; the registry is what classify_patient runs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsleep.detect.contract import Series
from medsleep.detect.reasons import KINDS
from medsleep.detect.registry import FOLLOW_UP_RULES, SERIES_RULES
from medsleep.policy import load_policy

POLICY = load_policy()
MINUTE = 60_000


def series_of(code: str, values: list[float], every_ms: int = MINUTE) -> Series:
    cp = POLICY.for_code(code)
    assert cp is not None
    times = (np.arange(len(values)) * every_ms).astype(np.int64)
    return Series(code, times, np.asarray(values, dtype=np.float64), cp, POLICY.artifact_run_min)


@pytest.mark.parametrize("rule", SERIES_RULES + FOLLOW_UP_RULES, ids=lambda r: r.name)
@given(values=st.lists(st.floats(min_value=-10, max_value=400), min_size=0, max_size=80))
@settings(deadline=None, max_examples=25)
def test_findings_point_into_the_series(rule: object, values: list[float]) -> None:
    s = series_of("8867-4", values)
    anchors = np.zeros(s.size, dtype=np.bool_)
    anchors[::7] = True
    s = replace(s, anchors=anchors, kept=anchors.copy())
    for finding in rule.judge(s, POLICY):  # type: ignore[attr-defined]
        assert finding.kind in KINDS
        assert finding.rule
        if finding.positions.size:
            assert finding.positions.min() >= 0
            assert finding.positions.max() < s.size
        if finding.context_of is not None:
            assert finding.context_of.shape == finding.positions.shape
            assert anchors[finding.context_of].all()


def test_rules_have_distinct_names() -> None:
    names = [rule.name for rule in SERIES_RULES + FOLLOW_UP_RULES]
    assert len(names) == len(set(names))


def test_a_rule_that_does_not_apply_finds_nothing() -> None:
    # Heart rate has no critical range: the critical-value rule stays silent.
    (critical,) = [rule for rule in SERIES_RULES if rule.name == "critical"]
    assert critical.judge(series_of("8867-4", [20.0, 300.0, 75.0]), POLICY) == []
