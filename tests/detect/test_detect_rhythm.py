"""The rhythm rule and rate-aware judging: beat-to-beat series, 1/s series, unknown codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from medsleep.detect import classify_patient
from medsleep.detect.rhythm import spike_z
from medsleep.detect.timing import is_beat_level
from medsleep.policy import load_policy

POLICY = load_policy()


def beats(hr: np.ndarray, code: str = "8867-4") -> pd.DataFrame:
    """One reading per beat: each at the end of its RR interval (60/HR seconds)."""
    t = np.cumsum(60_000 / hr).astype(np.int64)
    return pd.DataFrame(
        {"id": np.arange(1, hr.size + 1), "code": code, "t": t, "value": hr.round(2)}
    )


def sinus(n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    drift = 72 + 4 * np.sin(np.arange(n) / 40)  # respiratory sinus arrhythmia, slow drift
    return drift + rng.normal(0, 0.8, n)


def breathing(rng: np.random.Generator, n: int, breath: float) -> np.ndarray:
    """Sinus rhythm around 70/min with respiratory sinus arrhythmia (+-2/min, a breath every
    ``breath`` beats) and beat noise."""
    hr: np.ndarray = 70 + 2 * np.sin(2 * np.pi * np.arange(n) / breath) + rng.normal(0, 0.8, n)
    return hr


def premature(hr: np.ndarray, e: int, early: float) -> None:
    """Make beat ``e`` come at ``early`` of a normal RR interval, and beat ``e + 1`` its
    compensatory pause (the two intervals sum to two normal ones)."""
    normal_rr = 60_000 / hr[e - 1]
    hr[e] = 60_000 / (early * normal_rr)
    hr[e + 1] = 60_000 / ((2 - early) * normal_rr)


def test_a_premature_beat_is_kept_and_its_pause_is_its_context() -> None:
    hr = sinus(600)
    hr[300] = 95.0  # premature: short RR
    hr[301] = 58.0  # compensatory pause
    decisions = classify_patient(beats(hr), POLICY)
    reasons = decisions.reasons.set_index("reading_id")
    assert reasons.loc[301, "rule"] == "rhythm-spike"
    assert reasons.loc[302, "kind"] == "context"
    assert reasons.loc[302, "context_of"] == 301
    # A few readings, not the ~80 beats of the surrounding minute.
    assert decisions.retained_ids.tolist() == [300, 301, 302]


def test_a_blocked_beat_is_kept() -> None:
    hr = sinus(600)
    hr[400] = 36.0  # a dropped beat: twice the RR
    decisions = classify_patient(beats(hr), POLICY)
    assert 401 in decisions.retained_ids


@given(st.integers(min_value=0, max_value=10_000))
@settings(deadline=None, max_examples=15)
def test_plain_sinus_rhythm_keeps_almost_nothing(seed: int) -> None:
    decisions = classify_patient(beats(sinus(900, seed)), POLICY)
    assert decisions.retained_ids.size <= 9  # 1 %: compression stays far above 20x


def test_beat_level_is_read_from_the_median_interval() -> None:
    assert is_beat_level(np.arange(0, 60_000, 800))
    assert is_beat_level(np.arange(0, 60_000, 1000))
    assert not is_beat_level(np.arange(0, 3_600_000, 60_000))


def test_spikes_are_scaled_by_the_series_own_successive_differences() -> None:
    quiet = np.tile([70.0, 70.5], 10)
    noisy = np.tile([70.0, 76.0], 10)
    quiet[10] = noisy[10] = 76.0 + 5.5
    assert spike_z(quiet)[10] > 4
    assert spike_z(noisy)[10] < 4


def test_an_uncatalogued_series_is_judged_by_statistics_alone() -> None:
    # Before the catalogue fix nothing ever looked at a code outside it: recall 0.
    rng = np.random.default_rng(5)
    values = 120 + np.cumsum(rng.normal(0, 0.2, 400))
    values[200:206] += np.array([15.0, -12.0, 14.0, -13.0, 16.0, -11.0])  # a zigzag event
    frame = pd.DataFrame(
        {
            "id": np.arange(1, 401),
            "code": "local-arterial-line",
            "t": np.arange(400, dtype=np.int64) * 60_000,
            "value": values,
        }
    )
    decisions = classify_patient(frame, POLICY)
    kept = set(decisions.retained_ids.tolist())
    assert kept & set(range(201, 207))
    rules = set(decisions.reasons["rule"])
    assert not rules & {"news2-critical", "news2-transition", "critical-lab"}
    assert "detector:ECOD" not in rules  # a statistical reason says no clinical rule applied


def test_ectopic_beats_only_a_little_faster_than_sinus_are_kept_by_their_pause() -> None:
    # Ectopic beats at 78-86/min among ~72/min, each followed by its compensatory pause (the
    # two RR intervals sum to two normal ones). The rise into such a beat is within twice the
    # sinus beat noise; the short-long pair as a whole is not.
    rng = np.random.default_rng(8)
    hr = 72 + 4 * np.sin(np.arange(1200) / 40) + rng.normal(0, 1.5, 1200)
    ectopic = np.arange(100, 1100, 100)
    for e, rate in zip(ectopic, rng.uniform(78, 86, ectopic.size), strict=True):
        normal_rr = 60_000 / hr[e - 1]
        hr[e] = rate
        hr[e + 1] = 60_000 / (2 * normal_rr - 60_000 / rate)
    decisions = classify_patient(beats(hr), POLICY)
    kept = set(decisions.retained_ids.tolist())
    assert {int(e) + 1 for e in ectopic} <= kept  # ids are positions + 1
    assert len(kept) <= 3 * ectopic.size + 12  # the beat, its context, hardly anything else


def test_a_slightly_premature_beat_is_found_against_the_breathing_rhythm() -> None:
    # Respiratory sinus arrhythmia moves sinus rate +-2/min every 3.5-5 beats: ectopic beats
    # 6-10 % premature rise little more than a breath does, and their pause falls little
    # lower. Measured against the beats around the pair, on its residual's own scale, most
    # stand out (in 8 such records the neighbour measure alone found 29 of 88; both, 56).
    found = total = kept_total = 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n = 2400
        hr = breathing(rng, n, rng.uniform(3.5, 5.0))
        ectopic = np.arange(150, n - 150, 200)
        for e, early in zip(ectopic, rng.uniform(0.90, 0.94, ectopic.size), strict=True):
            premature(hr, int(e), early)
        kept = set(classify_patient(beats(hr), POLICY).retained_ids.tolist())
        found += sum(int(e) + 1 in kept for e in ectopic)  # ids are positions + 1
        total += ectopic.size
        kept_total += len(kept)
    assert found >= 0.5 * total
    assert kept_total <= 0.03 * 4 * 2400  # compression above 30x


def test_a_pair_in_a_once_a_second_monitor_numeric_is_not_a_premature_beat() -> None:
    # A monitor's heart rate once a second is averaged over beats: up then down is noise.
    rng = np.random.default_rng(4)
    hr = 72 + rng.normal(0, 0.8, 1800)
    hr[900], hr[901] = 74.5, 69.5  # a pair the rule takes beat by beat
    frame = beats(hr).assign(t=np.arange(1800, dtype=np.int64) * 1000)
    assert 901 not in set(classify_patient(frame, POLICY).retained_ids.tolist())
    beat_timed = classify_patient(beats(hr), POLICY).retained_ids.tolist()
    assert 901 in beat_timed


def test_a_short_long_pair_only_counts_beat_by_beat() -> None:
    values = np.array([70.0, 71, 70, 71, 70, 76, 65, 70, 71, 70])
    paired, plain = spike_z(values), spike_z(values, pairs=False)
    assert paired[5] > 1.5 * plain[5]
    assert np.array_equal(np.delete(paired, 5), np.delete(plain, 5))


def test_sensor_off_zeros_of_an_uncatalogued_code_are_an_artifact_run_not_an_event() -> None:
    # A monitor's numeric under a code no catalogue knows sends 0 while its sensor is off:
    # that is no signal (summarised in an artifact band, values kept), not 40 deviations.
    rng = np.random.default_rng(2)
    values = 97 + rng.normal(0, 0.6, 600).round(1)
    values[200:240] = 0.0
    values[400:410] -= 8  # a real ten-minute dip
    frame = pd.DataFrame(
        {"id": np.arange(1, 601), "code": "x-local-spo2", "t": np.arange(600) * 60_000,
         "value": values}
    )  # fmt: skip
    decisions = classify_patient(frame, POLICY)
    assert decisions.series_statistical == 1
    kept = set(decisions.retained_ids.tolist())
    assert not kept & set(range(201, 241))
    assert (decisions.band.iloc[200:240] == "artifact").all()
    assert set(range(403, 409)) <= kept


def test_a_premature_beat_in_a_per_beat_pressure_is_a_fall_then_a_rise() -> None:
    # Arterial pressure beat by beat: a premature beat is filled less (its systolic falls
    # 12-25 %), the beat after its pause more (it rises by half that). The pair is the mirror
    # of heart rate's; read unmirrored, the rhythm rule found 36 of 66 such beats in 6 records.
    found = total = 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n = 2400
        hr = breathing(rng, n, 4.3)
        systolic = 118 + 4 * np.sin(2 * np.pi * np.arange(n) / 4.3 + 1) + rng.normal(0, 1.2, n)
        ectopic = np.arange(150, n - 150, 200)
        for e in ectopic:
            drop = rng.uniform(0.12, 0.25)
            systolic[e] *= 1 - drop
            systolic[e + 1] *= 1 + drop / 2
            premature(hr, int(e), rng.uniform(0.85, 0.93))
        frame = beats(hr, code="8480-6").assign(value=systolic.round(1))  # timed by the beats
        kept = set(classify_patient(frame, POLICY).retained_ids.tolist())
        found += sum(int(e) + 1 in kept for e in ectopic)
        total += ectopic.size
    assert found >= 0.85 * total


def test_a_series_of_beat_intervals_is_read_as_the_mirror_of_heart_rate() -> None:
    # The same beats sent as RR intervals in ms under a local code: a premature beat is a
    # short interval and its pause a long one. The series follows its own timing, so it is
    # read mirrored without any catalogue entry (read as it is, 5 of 11 were found).
    rng = np.random.default_rng(21)
    n = 2400
    hr = breathing(rng, n, 4.3)
    ectopic = np.arange(150, n - 150, 200)
    for e, early in zip(ectopic, rng.uniform(0.85, 0.90, ectopic.size), strict=True):
        premature(hr, int(e), early)
    as_rate = beats(hr)
    as_interval = as_rate.assign(code="local-rr-ms", value=(60_000 / hr).round(1))
    for frame in (as_rate, as_interval):
        kept = set(classify_patient(frame, POLICY).retained_ids.tolist())
        assert sum(int(e) + 1 in kept for e in ectopic) >= ectopic.size - 1
