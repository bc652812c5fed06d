"""Guard rules: NEWS2 bands (RCP 2017), plausibility runs, hysteresis of band transitions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medsleep.detect import classify_patient
from medsleep.detect.rules import news2_scores, run_lengths, transitions
from medsleep.policy import Policy, load_policy

HR, RR, SPO2, SBP, TEMP = "8867-4", "9279-1", "59408-5", "8480-6", "8310-5"

# RCP NEWS2 (2017) chart, SpO2 scale 1: (value, sub-score) on both sides of every boundary.
RCP_NEWS2: dict[str, list[tuple[float, int]]] = {
    RR: [(4, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (40, 3)],
    SPO2: [(85, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
    SBP: [(70, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
    HR: [(30, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2),
         (130, 2), (131, 3), (180, 3)],
    TEMP: [(34.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
           (39.1, 2), (41.0, 2)],
}  # fmt: skip


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def rules_only(policy: Policy) -> Policy:
    """The policy without any detector, to see what the rules alone retain."""
    codes = {code: replace(cp, detector="") for code, cp in policy.codes.items()}
    return replace(policy, codes=codes, multivariate=replace(policy.multivariate, detector=""))


def spaced(code: str, values: list[float], every_minutes: float = 60) -> pd.DataFrame:
    """One reading per ``every_minutes`` (far apart: no context, no transitions by dwell)."""
    n = len(values)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "code": code,
            "t": (np.arange(n) * every_minutes * 60_000).astype(np.int64),
            "value": np.asarray(values, dtype=np.float64),
        }
    )


@pytest.mark.parametrize("code", sorted(RCP_NEWS2))
def test_news2_bands_match_rcp_2017_at_every_boundary(policy: Policy, code: str) -> None:
    values = [value for value, _ in RCP_NEWS2[code]]
    expected = [score for _, score in RCP_NEWS2[code]]
    decisions = classify_patient(spaced(code, values), policy)
    assert decisions.news2.tolist() == expected
    assert decisions.band.tolist() == [f"news2-{score}" for score in expected]


@pytest.mark.parametrize("code", sorted(RCP_NEWS2))
def test_sub_score_three_is_always_retained_as_news2_critical(policy: Policy, code: str) -> None:
    frame = spaced(code, [value for value, _ in RCP_NEWS2[code]])
    decisions = classify_patient(frame, policy)
    critical = decisions.reasons[decisions.reasons["rule"] == "news2-critical"]
    threes = frame.loc[decisions.news2.to_numpy() == 3, "id"]
    assert set(critical["reading_id"]) == set(threes)
    assert (critical["kind"] == "rule").all()
    assert (critical["news2"] == 3).all()
    # score is the measured value, threshold the band bound that was crossed
    values = frame.set_index("id").loc[critical["reading_id"], "value"]
    assert critical["score"].tolist() == values.tolist()
    assert critical["threshold"].notna().all()


@given(st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), max_size=50))
def test_vectorised_scores_agree_with_code_policy(values: list[float]) -> None:
    policy = load_policy()
    for code in RCP_NEWS2:
        cp = policy.codes[code]
        got = news2_scores(np.asarray(values, dtype=np.float64), cp.bands).tolist()
        assert got == [cp.news2_score(v) for v in values]


def test_codes_without_bands_get_an_empty_band_and_no_score(policy: Policy) -> None:
    decisions = classify_patient(spaced("8462-4", [40.0, 80.0, 120.0]), policy)
    assert decisions.band.tolist() == ["", "", ""]
    assert decisions.news2.isna().all()


@given(st.lists(st.booleans(), max_size=60))
def test_run_lengths_are_the_length_of_each_true_run(mask: list[bool]) -> None:
    got = run_lengths(np.asarray(mask, dtype=np.bool_)).tolist()
    expected: list[int] = []
    i = 0
    while i < len(mask):
        j = i
        while j < len(mask) and mask[j] == mask[i]:
            j += 1
        expected += [(j - i) if mask[i] else 0] * (j - i)
        i = j
    assert got == expected


# --- hysteresis -------------------------------------------------------------------------


@given(
    st.lists(st.integers(min_value=1, max_value=2), min_size=1, max_size=40),
    st.integers(min_value=2, max_value=6),
)
def test_flicker_shorter_than_dwell_is_never_a_transition(lengths: list[int], dwell: int) -> None:
    # The series sits in band 0 and keeps dipping into band 1 for fewer than `dwell` readings.
    scores: list[int] = [0] * dwell
    for length in lengths:
        scores += [1] * min(length, dwell - 1) + [0]
    assert transitions(np.asarray(scores, dtype=np.int64), dwell).size == 0


@given(
    st.lists(st.integers(min_value=0, max_value=3), max_size=80),
    st.integers(min_value=1, max_value=5),
)
def test_each_transition_starts_a_run_that_stays_and_changes_the_band(
    scores: list[int], dwell: int
) -> None:
    s = np.asarray(scores, dtype=np.int64)
    moved = transitions(s, dwell)
    confirmed = scores[0] if scores else None
    for position in moved.tolist():
        run = s[position : position + dwell]
        assert run.size == dwell
        assert (run == s[position]).all()
        assert position == 0 or s[position - 1] != s[position]
        assert s[position] != confirmed
        confirmed = int(s[position])


def test_transitions_need_the_dwell_time_as_well_as_readings() -> None:
    scores = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=np.int64)
    minutes = np.arange(scores.size, dtype=np.int64) * 60_000
    assert transitions(scores, 3, minutes, dwell_ms=0).tolist() == [3, 7]
    assert transitions(scores, 3, minutes, dwell_ms=10 * 60_000).size == 0
    # every 15 minutes, four readings are an hour: that stays
    quarter = minutes * 15
    assert transitions(scores, 3, quarter, dwell_ms=10 * 60_000).tolist() == [3, 7]


def test_flicker_across_a_boundary_is_at_most_one_transition(policy: Policy) -> None:
    # HR crossing 90/91 (band 0/1) every minute for two hours.
    values = [90.0 if i % 2 else 91.0 for i in range(120)]
    decisions = classify_patient(spaced(HR, values, every_minutes=1), policy)
    assert (decisions.reasons["rule"] == "news2-transition").sum() <= 1


def test_sustained_entry_is_one_retained_transition_at_its_first_reading(
    policy: Policy,
) -> None:
    values = [75.0] * 60 + [100.0] * 60  # band 0, then band 1 for an hour
    frame = spaced(HR, values, every_minutes=1)
    decisions = classify_patient(frame, rules_only(policy))
    moved = decisions.reasons[decisions.reasons["rule"] == "news2-transition"]
    assert moved["reading_id"].tolist() == [int(frame["id"][60])]
    assert moved["news2"].tolist() == [1]
    assert moved["threshold"].tolist() == [90.0]
    # the rest of the stretch in band 1 is summarised, not retained
    assert np.isin(frame["id"][70:], decisions.retained_ids).sum() == 0


def test_entering_band_zero_is_not_a_retained_transition(policy: Policy) -> None:
    values = [100.0] * 60 + [75.0] * 60
    decisions = classify_patient(spaced(HR, values, every_minutes=1), policy)
    assert (decisions.reasons["rule"] == "news2-transition").sum() == 0
