"""Episodes across vitals, worst values, peak NEWS2 and the per-minute NEWS2 aggregate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from medsleep.detect import Episode, classify_patient, group_episodes, news2_aggregate
from medsleep.policy import Policy, load_policy

HR, RR, SPO2, SAO2, SBP, K = "8867-4", "9279-1", "59408-5", "2708-6", "8480-6", "2823-3"
MINUTE = 60_000


@pytest.fixture(scope="module")
def policy() -> Policy:
    """Rules only, no context: the retained readings are exactly the rule hits."""
    p = load_policy()
    codes = {code: replace(cp, detector="") for code, cp in p.codes.items()}
    return replace(
        p,
        codes=codes,
        multivariate=replace(p.multivariate, detector=""),
        context_minutes=0,
        episode_gap_minutes=15,
    )


def frame_of(series: dict[str, list[float]], every_minutes: int = 1) -> pd.DataFrame:
    parts = []
    next_id = 1
    for code, values in series.items():
        n = len(values)
        parts.append(
            pd.DataFrame(
                {
                    "id": np.arange(next_id, next_id + n, dtype=np.int64),
                    "code": code,
                    "t": np.arange(n, dtype=np.int64) * every_minutes * MINUTE,
                    "value": np.asarray(values, dtype=np.float64),
                }
            )
        )
        next_id += 1000
    return pd.concat(parts, ignore_index=True)


def test_retained_readings_group_across_vitals_by_the_gap(policy: Policy) -> None:
    hr = [75.0] * 200
    spo2 = [97.0] * 200
    hr[20] = 140.0  # minute 20
    spo2[30] = 88.0  # minute 30: within 15 minutes of the HR one: same episode
    hr[100] = 35.0  # minute 100: far away: a new episode
    frame = frame_of({HR: hr, SPO2: spo2})
    decisions = classify_patient(frame, policy)
    episodes = group_episodes(frame, decisions, policy)
    assert [(e.start_ms, e.end_ms) for e in episodes] == [
        (20 * MINUTE, 30 * MINUTE),
        (100 * MINUTE, 100 * MINUTE),
    ]
    first, second = episodes
    assert first.codes == tuple(sorted((HR, SPO2)))
    assert first.reading_ids == (21, 1031)
    assert first.reasons == ("news2-critical",)
    assert second.codes == (HR,)
    assert second.worst == {HR: 35.0}


def test_worst_value_is_the_highest_sub_score_then_furthest_out(policy: Policy) -> None:
    hr = [75.0] * 60
    hr[10:14] = [135.0, 150.0, 132.0, 39.0]  # all sub-score 3; 150 is furthest from 51-90
    frame = frame_of({HR: hr})
    episodes = group_episodes(frame, classify_patient(frame, policy), policy)
    assert len(episodes) == 1
    assert episodes[0].worst == {HR: 150.0}


def test_peak_news2_counts_parameters_that_were_not_retained(policy: Policy) -> None:
    rr = [22.0] * 120  # sub-score 2 all along: never a transition, never retained
    hr = [75.0] * 120
    hr[60] = 140.0  # sub-score 3
    frame = frame_of({RR: rr, HR: hr})
    decisions = classify_patient(frame, policy)
    assert not set(frame.loc[frame["code"] == RR, "id"]) & set(decisions.retained_ids.tolist())
    (episode,) = group_episodes(frame, decisions, policy)
    assert episode.peak_news2 == 3 + 2
    assert isinstance(episode, Episode)


def test_artifacts_alone_are_no_episode(policy: Policy) -> None:
    spo2 = [97.0] * 60
    spo2[30] = 0.0
    frame = frame_of({SPO2: spo2})
    decisions = classify_patient(frame, policy)
    assert decisions.retained_ids.tolist() == [31]
    assert group_episodes(frame, decisions, policy) == []


def test_labs_join_the_episode_they_fall_in(policy: Policy) -> None:
    hr = [75.0] * 60
    hr[30] = 140.0
    frame = pd.concat(
        [
            frame_of({HR: hr}),
            pd.DataFrame({"id": [5000], "code": [K], "t": [35 * MINUTE], "value": [7.1]}),
        ],
        ignore_index=True,
    )
    (episode,) = group_episodes(frame, classify_patient(frame, policy), policy)
    assert episode.codes == tuple(sorted((HR, K)))
    assert episode.worst[K] == 7.1
    # 7.1 mmol/L is critical, and outside the reference range of a sparse (6-hourly) series
    assert set(episode.reasons) == {"news2-critical", "critical-lab", "outside-reference"}


def test_no_retained_readings_no_episodes(policy: Policy) -> None:
    frame = frame_of({HR: [75.0] * 30})
    assert group_episodes(frame, classify_patient(frame, policy), policy) == []


def test_news2_aggregate_is_the_sum_of_latest_sub_scores_per_minute(policy: Policy) -> None:
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "code": [HR, HR, RR, RR],
            "t": [0, 10 * MINUTE + 5_000, 2 * MINUTE, 5 * MINUTE],
            "value": [95.0, 75.0, 22.0, 15.0],  # HR 1 then 0; RR 2 then 0
        }
    )
    aggregate = news2_aggregate(frame, policy)
    assert aggregate.index[0] == 0
    assert aggregate.index[-1] == 10 * MINUTE
    assert (np.diff(aggregate.index) == MINUTE).all()
    expected = [1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 0]
    assert aggregate.tolist() == expected


def test_news2_aggregate_counts_a_shared_parameter_once(policy: Policy) -> None:
    assert policy.codes[SPO2].news2_parameter == policy.codes[SAO2].news2_parameter != ""
    frame = pd.DataFrame(
        {
            "id": [1, 2],
            "code": [SPO2, SAO2],
            "t": [0, MINUTE],
            "value": [91.0, 95.0],  # 3, then the arterial one says 1: the latest wins
        }
    )
    assert news2_aggregate(frame, policy).tolist() == [3, 1]


def test_news2_aggregate_ignores_implausible_and_unbanded_readings(policy: Policy) -> None:
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "code": [HR, HR, K],
            "t": [0, MINUTE, MINUTE],
            "value": [75.0, 0.0, 9.0],
        }
    )
    # the implausible HR 0 is no change: the aggregate ends with the last plausible reading
    assert news2_aggregate(frame, policy).tolist() == [0]
    assert news2_aggregate(frame.iloc[0:0], policy).empty
