"""Artifacts by rate of change: jumps out and back the parameter cannot make, at any rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from medsleep.detect import classify_patient, group_episodes
from medsleep.detect.rate import rate_artifacts, reach
from medsleep.policy import load_policy
from tests.detect.test_detect_rhythm import beats, sinus

POLICY = load_policy()
HR, SPO2, ABP_SYS = "8867-4", "59408-5", "150037"


def series(code: str, values: np.ndarray, every_ms: float) -> pd.DataFrame:
    t = (np.arange(values.size) * every_ms).astype(np.int64)
    return pd.DataFrame(
        {"id": np.arange(1, values.size + 1), "code": code, "t": t, "value": values}
    )


def reasons_of(decisions: object, reading_id: int) -> set[tuple[str, str]]:
    reasons = decisions.reasons  # type: ignore[attr-defined]
    rows = reasons[reasons["reading_id"] == reading_id]
    return set(zip(rows["kind"], rows["rule"], strict=True))


def test_a_heart_rate_spike_a_minute_apart_is_an_artifact_not_a_rule_hit() -> None:
    hr = np.full(180, 90.0) + np.random.default_rng(1).normal(0, 1.5, 180).round()
    hr[100] = 290.0
    frame = series(HR, hr, 60_000)
    decisions = classify_patient(frame, POLICY)
    assert reasons_of(decisions, 101) == {("artifact", "rate-of-change")}
    row = decisions.reasons.set_index("reading_id").loc[101]
    assert row["score"] > row["threshold"]  # rate per second above what HR can do
    assert row["score"] == (290.0 - hr[99]) / 60
    assert pd.isna(decisions.news2.iloc[100])  # no NEWS2 points
    assert group_episodes(frame, decisions, POLICY) == []  # never an episode


def test_a_beat_to_beat_spike_is_an_artifact_but_ectopic_beats_are_not() -> None:
    hr = sinus(900)
    hr[200], hr[201] = 115.0, 58.0  # premature beat (as in MIT-BIH 100) and its pause
    hr[500] = 290.0  # noise counted as a beat
    decisions = classify_patient(beats(hr), POLICY)
    assert reasons_of(decisions, 501) == {("artifact", "rate-of-change")}
    assert ("detector", "rhythm-spike") in reasons_of(decisions, 201)
    kinds = decisions.reasons.loc[decisions.reasons["kind"] == "artifact", "reading_id"]
    assert kinds.tolist() == [501]


def test_spo2_dropping_within_seconds_is_an_artifact_a_desaturation_is_not() -> None:
    spo2 = np.full(600, 97.0)
    spo2[100:102] = 40.0  # probe artifact, two seconds
    dip = 97 - 15 * np.sin(np.linspace(0, np.pi, 60))  # a real desaturation over a minute
    spo2[300:360] = dip.round()
    decisions = classify_patient(series(SPO2, spo2, 1000), POLICY)
    artifacts = decisions.reasons.loc[decisions.reasons["kind"] == "artifact", "reading_id"]
    assert artifacts.tolist() == [101, 102]
    assert decisions.retained_ids[(decisions.retained_ids > 300)].size > 0  # the dip is kept


def test_a_flushed_arterial_line_is_an_artifact() -> None:
    systolic = 120 + np.random.default_rng(2).normal(0, 2, 900).round()
    systolic[400:404] = 300.0  # flush: four beats at the flush bag's pressure
    decisions = classify_patient(series(ABP_SYS, systolic, 800), POLICY)
    for reading_id in range(401, 405):
        assert reasons_of(decisions, reading_id) == {("artifact", "rate-of-change")}


def test_a_jump_that_stays_or_comes_back_slowly_is_no_artifact() -> None:
    hr = np.full(300, 70.0)
    hr[150:] = 200.0  # onset of a sustained tachyarrhythmia, minute by minute
    assert (
        rate_artifacts(np.arange(300) * 60_000, hr, np.ones(300, bool), 120, 0.5).positions.size
        == 0
    )
    t = np.array([0, 60_000, 120_000, 1_320_000, 1_380_000])  # 20 min gap after the spike
    found = rate_artifacts(t, np.array([90.0, 90, 290, 90, 90]), np.ones(5, bool), 120, 0.5)
    assert found.positions.size == 0  # back after 20 minutes: could be real


def test_codes_without_a_rate_limit_are_never_rate_artifacts() -> None:
    values = np.full(100, 4.0)
    values[50] = 9.0
    decisions = classify_patient(series("2823-3", values, 60_000), POLICY)  # potassium
    assert "artifact" not in set(decisions.reasons["kind"])


@given(
    st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=3, max_size=60),
    st.lists(st.integers(min_value=100, max_value=120_000), min_size=59, max_size=59),
)
@settings(deadline=None, max_examples=60)
def test_changes_within_reach_are_never_artifacts(steps: list[float], gaps: list[int]) -> None:
    """A series that never changes faster than the parameter can has no rate artifact."""
    dt = np.array(gaps[: len(steps) - 1], dtype=np.int64)
    t = np.concatenate(([0], np.cumsum(dt)))
    limit = reach(dt / 1000.0, 120.0, 0.5)
    values = 90.0 + np.concatenate(([0.0], np.cumsum(np.array(steps[1:]) * limit)))
    assert rate_artifacts(t, values, np.ones(t.size, bool), 120, 0.5).positions.size == 0


def test_a_spike_inside_an_episode_adds_no_news2_points_to_it() -> None:
    n = 180
    spo2 = np.full(n, 97.0)
    spo2[60:90] = 89.0  # desaturation: SpO2 scores 3 for half an hour
    hr = np.full(n, 80.0) + np.random.default_rng(4).normal(0, 1.5, n).round()
    hr[75] = 290.0  # a spike in the middle of it: would score pulse 3
    frame = pd.concat(
        [series(SPO2, spo2, 60_000), series(HR, hr, 60_000).assign(id=lambda f: f["id"] + n)],
        ignore_index=True,
    )
    decisions = classify_patient(frame, POLICY)
    assert reasons_of(decisions, n + 76) == {("artifact", "rate-of-change")}
    (episode,) = group_episodes(frame, decisions, POLICY)
    assert episode.start_ms <= 75 * 60_000 <= episode.end_ms
    assert episode.peak_news2 == 3  # SpO2 alone, not 6
    assert n + 76 not in episode.reading_ids
