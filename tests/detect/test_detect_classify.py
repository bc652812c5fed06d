"""classify_patient: critical labs, artifacts, context, the output contract, odd frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medsleep.detect import KINDS, PatientDecisions, classify_patient
from medsleep.policy import Policy, load_policy

HR, SPO2, K, NA = "8867-4", "59408-5", "2823-3", "2951-2"
MINUTE = 60_000


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def rules_only(policy: Policy) -> Policy:
    codes = {code: replace(cp, detector="") for code, cp in policy.codes.items()}
    return replace(policy, codes=codes, multivariate=replace(policy.multivariate, detector=""))


def series(
    code: str, values: list[float], every_minutes: float = 1, first_id: int = 1
) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "id": np.arange(first_id, first_id + n, dtype=np.int64),
            "code": code,
            "t": (np.arange(n) * every_minutes * MINUTE).astype(np.int64),
            "value": np.asarray(values, dtype=np.float64),
        }
    )


def reasons_of(decisions: PatientDecisions, reading_id: int) -> pd.DataFrame:
    r = decisions.reasons
    return r[r["reading_id"] == reading_id]


# --- critical labs --------------------------------------------------------------------


@given(
    st.lists(
        st.floats(min_value=0.5, max_value=15.0),  # plausible potassium, critical or not
        min_size=1,
        max_size=30,
    )
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_critical_labs_are_always_retained(policy: Policy, values: list[float]) -> None:
    frame = series(K, values, every_minutes=360)
    decisions = classify_patient(frame, policy)
    bounds = policy.codes[K].critical
    assert bounds is not None
    low, high = bounds
    critical = frame.loc[(frame["value"] < low) | (frame["value"] > high), "id"]
    assert set(critical) <= set(decisions.retained_ids.tolist())
    rows = decisions.reasons[decisions.reasons["rule"] == "critical-lab"]
    assert set(rows["reading_id"]) == set(critical)
    for score, threshold in zip(rows["score"], rows["threshold"], strict=True):
        assert threshold == (low if score < low else high)


def test_normal_labs_are_not_retained(policy: Policy) -> None:
    decisions = classify_patient(series(NA, [138.0, 141.0, 136.0], every_minutes=360), policy)
    assert decisions.retained_ids.size == 0
    assert decisions.band.tolist() == ["", "", ""]


# --- artifacts ------------------------------------------------------------------------


def test_isolated_implausible_reading_is_retained_as_artifact(policy: Policy) -> None:
    values = [97.0] * 30 + [0.0] + [97.0] * 30
    frame = series(SPO2, values)
    decisions = classify_patient(frame, policy)
    rows = reasons_of(decisions, 31)
    assert rows[["kind", "rule"]].values.tolist() == [["artifact", "implausible"]]
    assert rows["score"].tolist() == [0.0]
    assert rows["threshold"].tolist() == [1.0]
    assert rows["news2"].isna().all()  # not NEWS2-scored, so not news2-critical either
    assert decisions.band[30] == "news2-0"  # it takes the band around it
    assert decisions.news2.isna()[30]
    # an artifact is no anchor for context
    assert (decisions.reasons["kind"] == "context").sum() == 0


def test_run_of_implausible_readings_is_banded_artifact_and_not_retained(policy: Policy) -> None:
    run = policy.artifact_run_min + 2
    values = [97.0] * 30 + [0.0] * run + [97.0] * 30
    frame = series(SPO2, values)
    decisions = classify_patient(frame, policy)
    in_run = frame["id"][30 : 30 + run]
    assert (decisions.band[30 : 30 + run] == "artifact").all()
    assert not np.isin(in_run, decisions.retained_ids).any()
    assert (decisions.band.drop(index=range(30, 30 + run)) == "news2-0").all()


def test_run_shorter_than_the_minimum_is_retained_reading_by_reading(policy: Policy) -> None:
    short = policy.artifact_run_min - 1
    values = [97.0] * 30 + [0.0] * short + [97.0] * 30
    decisions = classify_patient(series(SPO2, values), policy)
    artifacts = decisions.reasons[decisions.reasons["kind"] == "artifact"]
    assert len(artifacts) == short
    assert "artifact" not in set(decisions.band)


def test_implausible_readings_do_not_reach_the_detector(policy: Policy) -> None:
    rng = np.random.default_rng(3)
    values = list(np.round(75 + rng.normal(0, 2, 300)))
    values[100:140] = [0.0] * 40  # sensor off for 40 minutes
    values[220] = 130.0  # a real spike
    frame = series(HR, values)
    decisions = classify_patient(frame, policy)
    detector = decisions.reasons[decisions.reasons["kind"] == "detector"]
    assert 221 in set(detector["reading_id"])
    assert not np.isin(frame["id"][100:140], decisions.retained_ids).any()


# --- context --------------------------------------------------------------------------


def test_context_is_the_same_code_within_the_window(policy: Policy) -> None:
    p = replace(rules_only(policy), context_minutes=3, context_readings=10)
    hr = series(HR, [75.0] * 20 + [140.0] + [75.0] * 20)  # critical at minute 20, id 21
    spo2 = series(SPO2, [97.0] * 41, first_id=101)
    decisions = classify_patient(pd.concat([hr, spo2], ignore_index=True), p)
    context = decisions.reasons[decisions.reasons["kind"] == "context"]
    assert sorted(context["reading_id"]) == [18, 19, 20, 22, 23, 24]
    assert (context["context_of"] == 21).all()
    assert context["score"].isna().all()
    assert decisions.retained_ids.tolist() == [18, 19, 20, 21, 22, 23, 24]


def test_context_points_at_the_nearest_anchor_and_is_not_extended(policy: Policy) -> None:
    p = replace(rules_only(policy), context_minutes=2, context_readings=2)
    values = [75.0] * 40
    values[10] = values[15] = 140.0  # ids 11 and 16
    decisions = classify_patient(series(HR, values), p)
    context = decisions.reasons[decisions.reasons["kind"] == "context"].set_index("reading_id")
    assert sorted(context.index) == [9, 10, 12, 13, 14, 15, 17, 18]
    assert context.loc[13, "context_of"] == 11
    assert context.loc[14, "context_of"] == 16
    # context of context would reach ids 7 or 20
    assert not {7, 8, 19, 20} & set(decisions.retained_ids.tolist())


@pytest.mark.parametrize("every_minutes", [1 / 60, 0.77 / 60, 1.0])
def test_context_is_a_few_readings_whatever_the_rate(policy: Policy, every_minutes: float) -> None:
    # One a second, one per beat (~78/min) or one a minute: the same readings around the hit,
    # never "everything within context_minutes" (120 neighbours at one a second).
    p = replace(rules_only(policy), context_minutes=2, context_readings=2)
    values = [75.0] * 300
    values[150] = 140.0  # id 151
    decisions = classify_patient(series(HR, values, every_minutes=every_minutes), p)
    assert decisions.retained_ids.tolist() == [149, 150, 151, 152, 153]


def test_zero_context_keeps_only_the_anchors(policy: Policy) -> None:
    p = replace(rules_only(policy), context_minutes=0)
    values = [75.0] * 20
    values[5] = 140.0
    decisions = classify_patient(series(HR, values), p)
    assert decisions.retained_ids.tolist() == [6]


# --- the output contract --------------------------------------------------------------


def test_reasons_have_the_documented_columns_and_dtypes(policy: Policy) -> None:
    frame = series(HR, [75.0] * 10 + [140.0] + [75.0] * 10)
    decisions = classify_patient(frame, policy)
    reasons = decisions.reasons
    assert list(reasons.columns) == [
        "reading_id", "kind", "rule", "score", "threshold", "news2", "context_of",
    ]  # fmt: skip
    assert reasons["reading_id"].dtype == np.int64
    assert reasons["score"].dtype == np.float64
    assert reasons["threshold"].dtype == np.float64
    assert str(reasons["news2"].dtype) == "Int64"
    assert str(reasons["context_of"].dtype) == "Int64"
    assert set(reasons["kind"]) <= set(KINDS)
    assert decisions.retained_ids.dtype == np.int64


def test_band_is_aligned_to_the_frame_index_even_when_unsorted(policy: Policy) -> None:
    rng = np.random.default_rng(0)
    hr = series(HR, list(np.round(75 + rng.normal(0, 3, 200))))
    hr.loc[50, "value"] = 150.0
    spo2 = series(SPO2, list(np.round(97 + rng.normal(0, 1, 200)).clip(0, 100)), first_id=1001)
    spo2.loc[120:124, "value"] = 0.0
    sorted_frame = pd.concat([hr, spo2], ignore_index=True)
    shuffled = sorted_frame.sample(frac=1.0, random_state=1)
    shuffled.index = shuffled.index + 10_000  # an index that is not 0..n-1
    a = classify_patient(sorted_frame, policy)
    b = classify_patient(shuffled, policy)
    assert b.band.index.equals(shuffled.index)
    assert b.news2.index.equals(shuffled.index)
    by_id_a = dict(zip(sorted_frame["id"], a.band, strict=True))
    by_id_b = dict(zip(shuffled["id"], b.band, strict=True))
    assert by_id_a == by_id_b
    pd.testing.assert_frame_equal(a.reasons, b.reasons)


def test_empty_frame() -> None:
    empty = pd.DataFrame(
        {
            "id": pd.Series([], dtype=np.int64),
            "code": pd.Series([], dtype="str"),
            "t": pd.Series([], dtype=np.int64),
            "value": pd.Series([], dtype=np.float64),
        }
    )
    decisions = classify_patient(empty, load_policy())
    assert decisions.reasons.empty
    assert list(decisions.reasons.columns)[0] == "reading_id"
    assert decisions.band.empty
    assert decisions.retained_ids.size == 0


@pytest.mark.parametrize("n", [1, 2, 5, 29])
def test_short_series_work_without_detectors(policy: Policy, n: int) -> None:
    values = [75.0] * n
    values[-1] = 75.0 + 60  # a jump a detector would flag on a long series; sub-score 2
    decisions = classify_patient(series(HR, values), policy)
    assert (decisions.reasons["kind"] != "detector").all()
    assert len(decisions.band) == n


def test_unknown_codes_are_passed_through_unbanded(policy: Policy) -> None:
    frame = series("99999-9", [1.0, 2.0, 1000.0])
    decisions = classify_patient(frame, policy)
    assert decisions.retained_ids.size == 0
    assert decisions.band.tolist() == ["", "", ""]


def test_a_single_multivariate_code_does_not_run_the_multivariate_detector(
    policy: Policy,
) -> None:
    rng = np.random.default_rng(5)
    decisions = classify_patient(series(HR, list(np.round(75 + rng.normal(0, 3, 500)))), policy)
    assert not decisions.reasons["rule"].str.startswith("multivariate").any()


vital_values = st.one_of(
    st.floats(min_value=-5, max_value=320, allow_nan=False),
    st.sampled_from([0.0, 40.0, 41.0, 90.0, 91.0, 130.0, 131.0, float("nan")]),
)


@given(st.lists(vital_values, min_size=0, max_size=80), st.integers(min_value=0, max_value=4))
@settings(deadline=None, max_examples=60)
def test_invariants_hold_for_any_heart_rate_series(values: list[float], context: int) -> None:
    policy = replace(load_policy(), context_minutes=context, context_readings=context + 1)
    frame = series(HR, values)
    decisions = classify_patient(frame, policy)
    reasons = decisions.reasons
    ids = set(frame["id"])
    retained = set(decisions.retained_ids.tolist())
    assert retained <= ids
    assert retained == set(reasons["reading_id"])
    assert not reasons.duplicated(["reading_id", "kind", "rule"]).any()
    band = dict(zip(frame["id"], decisions.band, strict=True))
    news2 = dict(zip(frame["id"], decisions.news2, strict=True))
    # every plausible sub-score 3 is retained; nothing banded "artifact" is
    assert {i for i, s in news2.items() if s is not pd.NA and s == 3} <= retained
    assert not {i for i, b in band.items() if b == "artifact"} & retained
    # context points at a retained, non-context reading within the window
    anchors = set(reasons.loc[reasons["kind"].isin(["rule", "detector"]), "reading_id"])
    t = dict(zip(frame["id"], frame["t"], strict=True))
    for row in reasons[reasons["kind"] == "context"].itertuples():
        assert row.context_of in anchors
        assert abs(t[row.reading_id] - t[row.context_of]) <= context * MINUTE
