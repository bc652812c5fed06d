"""PyOD detectors: spikes found, clean series left alone, fresh per series, multivariate."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsleep.detect import (
    DETECTOR_NAMES,
    MIN_DETECTOR_READINGS,
    check_detector_name,
    classify_patient,
    detect_aligned,
    detect_series,
)
from medsleep.detect.detectors import grow_segments, make_detector, sustained_runs
from medsleep.errors import PolicyError
from medsleep.policy import Policy, load_policy, parse_policy

HR, RR, SPO2, SBP = "8867-4", "9279-1", "59408-5", "8480-6"
MINUTE = 60_000


def ar1(seed: int, n: int, mean: float, sd: float, phi: float = 0.9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc = phi * acc + shocks[i]
        out[i] = acc
    return np.round(mean + out)


def frame_of(series: dict[str, np.ndarray]) -> pd.DataFrame:
    parts = []
    next_id = 1
    for code, values in series.items():
        n = len(values)
        parts.append(
            pd.DataFrame(
                {
                    "id": np.arange(next_id, next_id + n, dtype=np.int64),
                    "code": code,
                    "t": np.arange(n, dtype=np.int64) * MINUTE,
                    "value": values.astype(np.float64),
                }
            )
        )
        next_id += n
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def univariate_only(policy: Policy) -> Policy:
    return replace(policy, multivariate=replace(policy.multivariate, detector=""))


@pytest.mark.parametrize("seed", range(5))
def test_injected_spike_in_a_noisy_series_is_flagged(seed: int) -> None:
    values = ar1(seed, 1440, 75, 4)
    values[700] += 35
    flags = detect_series(values, "ECOD", 0.05, 4.0)
    assert 700 in flags.positions.tolist()
    assert (flags.scores > flags.threshold).all()


@pytest.mark.parametrize("seed", range(5))
def test_clean_series_is_barely_flagged(seed: int) -> None:
    values = ar1(seed, 1440, 75, 4)
    flags = detect_series(values, "ECOD", 0.05, 4.0)
    assert flags.positions.size + flags.segment.size <= 0.01 * values.size


def test_contamination_is_a_ceiling_on_the_flagged_fraction() -> None:
    values = ar1(1, 1440, 75, 4)
    flags = detect_series(values, "ECOD", 0.02, min_z=0.0)  # no magnitude gate
    assert 0 < flags.positions.size <= 0.02 * values.size + 1


@pytest.mark.parametrize(
    "name", ["ECOD", "COPOD", "HBOS", "IForest", "KNN", "MAD", "SpectralResidual"]
)
def test_every_kind_of_detector_finds_a_big_spike(name: str) -> None:
    values = ar1(2, 600, 75, 3)
    values[300] += 60
    flags = detect_series(values, name, 0.05, 4.0)
    assert 300 in flags.positions.tolist()
    assert flags.positions.max() < values.size


@pytest.mark.parametrize("name", ["TimeSeriesOD", "MatrixProfile"])
def test_windowed_time_series_detectors_run_through_the_same_interface(name: str) -> None:
    # Windowed models score subsequences (shapes), not single readings; they only have to
    # give valid positions that pass the gate here.
    values = ar1(2, 200, 75, 3)
    values[100] += 60
    flags = detect_series(values, name, 0.05, 4.0)
    assert flags.positions.size == 0 or flags.positions.max() < values.size
    assert np.isfinite(flags.threshold)


def test_too_short_series_skip_the_detector() -> None:
    values = ar1(0, MIN_DETECTOR_READINGS - 1, 75, 3)
    values[10] += 80
    assert detect_series(values, "ECOD", 0.05, 4.0).positions.size == 0


def test_unknown_detector_names_are_a_policy_error(policy: Policy) -> None:
    assert "ECOD" in DETECTOR_NAMES
    check_detector_name("")
    with pytest.raises(PolicyError, match="unknown detector"):
        check_detector_name("NoSuchModel")
    bad = replace(policy, codes={HR: replace(policy.codes[HR], detector="NoSuchModel")})
    with pytest.raises(PolicyError):
        classify_patient(frame_of({HR: ar1(0, 100, 75, 3)}), bad)


def test_sustained_event_is_kept_whole_as_a_segment() -> None:
    values = ar1(4, 1440, 75, 3)
    values[600:640] += 45  # a 40-minute tachycardia: its plateau masks itself for ECOD
    flags = detect_series(values, "ECOD", 0.05, 4.0)
    kept = set(flags.positions.tolist()) | set(flags.segment.tolist())
    assert set(range(600, 640)) <= kept
    assert (flags.segment_z >= 4.0).all()


def test_grow_segments_only_follows_runs_holding_a_seed() -> None:
    z = np.array([5.0, 5.0, 1.0, 5.0, 5.0, 5.0, 1.0, 5.0])
    assert grow_segments(np.array([4]), z, 4.0).tolist() == [3, 5]
    assert grow_segments(np.array([4]), z, 0.0).size == 0
    assert grow_segments(np.array([], dtype=np.int64), z, 4.0).size == 0


def test_a_detector_is_fresh_for_every_series(policy: Policy) -> None:
    p = univariate_only(policy)
    wild = ar1(11, 1440, 130, 12)
    wild[200] = 40
    a = frame_of({HR: ar1(10, 1440, 75, 3)})
    b = frame_of({HR: wild})
    a_then_b = [classify_patient(a, p), classify_patient(b, p)]
    b_then_a = [classify_patient(b, p), classify_patient(a, p)]
    pd.testing.assert_frame_equal(a_then_b[0].reasons, b_then_a[1].reasons)
    pd.testing.assert_frame_equal(a_then_b[1].reasons, b_then_a[0].reasons)


def test_series_of_one_patient_do_not_leak_into_each_other(policy: Policy) -> None:
    p = univariate_only(policy)
    sbp = ar1(12, 1440, 125, 8)
    sbp[900] += 50
    together = frame_of({HR: ar1(13, 1440, 75, 3), SBP: sbp})
    alone = together[together["code"] == SBP].reset_index(drop=True)
    both = classify_patient(together, p).reasons
    single = classify_patient(alone, p).reasons
    sbp_rows = both[both["reading_id"].isin(alone["id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(sbp_rows, single)
    assert 1440 + 901 in set(single["reading_id"])


def test_multivariate_flags_heart_rate_up_while_spo2_falls(policy: Policy) -> None:
    n = 1440
    hr, spo2 = ar1(20, n, 78, 3), ar1(21, n, 97, 0.8).clip(0, 100)
    rr, sbp = ar1(22, n, 16, 1.2), ar1(23, n, 125, 6)
    window = slice(700, 712)
    hr[window] += 18
    spo2[window] -= 3  # 94: band 1, and a modest dip on its own
    frame = frame_of({HR: hr, SPO2: spo2, RR: rr, SBP: sbp})
    decisions = classify_patient(frame, policy)
    reasons = decisions.reasons.merge(frame, left_on="reading_id", right_on="id")
    multi = reasons[reasons["rule"] == "multivariate:ECOD"]
    minutes = multi["t"] // MINUTE
    inside = multi[(minutes >= 700) & (minutes < 712)]
    assert {HR, SPO2} <= set(inside["code"])
    assert len(multi) - len(inside) <= 0.01 * n
    assert (multi["score"] > multi["threshold"]).all()


def test_aligned_detector_reports_the_columns_that_deviated() -> None:
    n = 600
    matrix = np.column_stack([ar1(30, n, 78, 3), ar1(31, n, 97, 1), ar1(32, n, 16, 1.5)])
    matrix[300, 0] += 40
    flags = detect_aligned(matrix, "ECOD", 0.05, 4.0)
    assert 300 in flags.positions.tolist()
    assert flags.columns is not None
    row = flags.columns[flags.positions.tolist().index(300)]
    assert row.tolist() == [True, False, False]


def test_aligned_detector_refuses_a_univariate_model() -> None:
    with pytest.raises(PolicyError, match="univariate"):
        detect_aligned(np.ones((100, 2)), "MAD", 0.05, 4.0)


def test_multivariate_takes_a_monitors_mdc_codes_one_series_per_parameter(
    policy: Policy,
) -> None:
    """Inputs are catalogue parameters: MDC heart rate (147842) and SpO2 (150456) count as
    heart rate and SpO2; with heart rate and pulse rate both present, one column for both."""
    n = 1440
    hr, spo2 = ar1(20, n, 78, 3), ar1(21, n, 97, 0.8).clip(0, 100)
    window = slice(700, 712)
    hr[window] += 18
    spo2[window] -= 3
    pulse = hr[::2]  # the oximeter's pulse rate, every other minute: fewer readings
    frame = frame_of({"147842": hr, "150456": spo2, "8889-8": np.repeat(pulse, 2)[: n - 1]})
    decisions = classify_patient(frame, policy)
    reasons = decisions.reasons.merge(frame, left_on="reading_id", right_on="id")
    multi = reasons[reasons["rule"] == "multivariate:ECOD"]
    inside = multi[(multi["t"] // MINUTE >= 700) & (multi["t"] // MINUTE < 712)]
    assert {"147842", "150456"} <= set(inside["code"])
    assert "8889-8" not in set(multi["code"])  # heart rate is in once, by its fuller series


def test_multivariate_parameters_must_be_in_the_catalogue() -> None:
    with pytest.raises(PolicyError, match="not in the catalogue: pulse"):
        parse_policy({"multivariate": {"parameters": ["pulse"]}})


def test_a_policy_names_every_detector_it_can_run_for_the_warm_up() -> None:
    assert load_policy().detector_names == {"ECOD"}
    site = parse_policy(
        {"codes": {"8867-4": {"detector": "IForest"}}, "multivariate": {"detector": "COPOD"}}
    )
    assert site.detector_names == {"IForest", "COPOD", "ECOD"}  # ECOD: every other code


def test_a_sustained_deviation_no_detector_flag_reaches_is_kept_whole() -> None:
    # The contamination ceiling lets ECOD flag one reading: the spike. The 30-minute plateau
    # 20/min above the baseline gets no seed, and is still one event.
    values = ar1(6, 1440, 70, 2)
    values[200] += 90
    values[700:730] += 20
    flags = detect_series(values, "ECOD", 0.0005, 4.0)
    kept = set(flags.positions.tolist()) | set(flags.segment.tolist())
    assert 200 in kept
    assert set(range(702, 728)) <= kept
    assert len(kept - set(range(695, 735)) - {200}) <= 0.01 * values.size


def test_a_deviation_shorter_than_sustained_needs_a_detector_flag() -> None:
    minute = 60_000
    z = np.array([1.0, 5, 5, 5, 5, 1, 1, 5, 5, 5, 5, 5, 1])
    assert sustained_runs(z, np.arange(13) * minute, 4.0).tolist() == [7, 8, 9, 10, 11]
    assert sustained_runs(z, np.arange(13) * minute, 0.0).size == 0
    # Beat by beat, one normal-looking beat does not break a two-minute run.
    beat = np.full(300, 6.0)
    beat[150] = 0.5
    assert sustained_runs(beat, np.arange(300) * 500, 4.0).size == 300


def test_every_reading_of_a_sustained_run_scores_past_the_gate() -> None:
    # Beat by beat, an SVT's one slower beat is still in the run, and its reason says so.
    rng = np.random.default_rng(1)
    values = 66 + rng.normal(0, 1.5, 3000)
    values[1000:1250] = 100 + rng.normal(0, 1.0, 250)  # 2.5 minutes
    values[1100] = 70.0
    times = np.cumsum(60_000 / values).astype(np.int64)
    flags = detect_series(values, "ECOD", 0.01, 4.0, times=times)
    kept = np.union1d(flags.positions, flags.segment)
    assert set(range(1000, 1250)) <= set(kept.tolist())
    assert (flags.segment_z >= 4.0).all()


@given(
    columns=st.lists(
        st.lists(st.sampled_from([0.0, 1.0, 2.5, -3.0, 70.0, 1e-9, 1e6]), min_size=40, max_size=40),
        min_size=1,
        max_size=3,
    ),
    new_rows=st.integers(0, 10),
)
@settings(deadline=None, max_examples=60)
def test_medsleep_ecod_scores_exactly_as_pyods(columns: list[list[float]], new_rows: int) -> None:
    """medsleep's ECOD takes the skewness's sign from numpy; every score and the threshold
    stay PyOD's to the bit, constant and symmetric columns included."""
    from pyod.models.ecod import ECOD

    X = np.array(columns, dtype=np.float64).T
    ours = make_detector("ECOD", 0.05, len(X))
    assert isinstance(ours, ECOD)
    assert type(ours) is not ECOD
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = ECOD(contamination=0.05).fit(X)
        ours.fit(X)
        np.testing.assert_array_equal(ours.decision_scores_, theirs.decision_scores_)
        assert ours.threshold_ == theirs.threshold_
        if new_rows:
            later = X[:new_rows] * 2
            np.testing.assert_array_equal(
                ours.decision_function(later), theirs.decision_function(later)
            )
