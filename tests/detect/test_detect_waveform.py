"""The waveform rule: raw samples of a wave, judged by shape, whatever their code."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsleep.detect import classify_patient
from medsleep.detect.period import period_of
from medsleep.detect.waveform import discords
from medsleep.policy import load_policy

POLICY = load_policy()
SAMPLE_MS = 10  # 100 samples a second
EXAMPLES = int(os.environ.get("WAVEFORM_EXAMPLES", "8"))
EDGE = 20  # a quarter cycle: the kept readings lie in a compared stretch overlapping the change


def pulse_wave(rng: np.random.Generator, beats: int = 60, period: int = 80) -> np.ndarray:
    """An arterial pressure wave: per beat a systolic upstroke and a dicrotic wave, each beat a
    little longer or shorter (heart rate variability) and stronger or weaker, breathing and
    sample noise on top."""
    parts = []
    for _ in range(beats):
        n = int(round(period * rng.uniform(0.95, 1.05)))
        x = np.arange(n) / n
        amplitude = rng.uniform(0.95, 1.05)
        beat = 80 + amplitude * (
            40 * np.exp(-0.5 * ((x - 0.18) / 0.07) ** 2)
            + 12 * np.exp(-0.5 * ((x - 0.45) / 0.08) ** 2)
        )
        parts.append(beat)
    wave = np.concatenate(parts)
    wave += 3 * np.sin(2 * np.pi * np.arange(wave.size) / (period * 4.5))
    wave += rng.normal(0, 0.3, wave.size)
    return wave.round(2)


def frame(values: np.ndarray, code: str = "local-abp-samples") -> pd.DataFrame:
    n = values.size
    return pd.DataFrame(
        {"id": np.arange(1, n + 1), "code": code, "t": np.arange(n) * SAMPLE_MS, "value": values}
    )


def weak_beat(x: np.ndarray, at: int) -> tuple[int, int]:
    seg = x[at : at + 80]
    x[at : at + 80] = seg.mean() + 0.6 * (seg - seg.mean())
    return at, at + 80


def damped(x: np.ndarray, at: int) -> tuple[int, int]:
    # an over-damped line for a beat: peak and dicrotic wave smoothed away
    x[at : at + 80] = np.convolve(x[at - 15 : at + 95], np.ones(31) / 31, "same")[15:95]
    return at, at + 80


def extra_bump(x: np.ndarray, at: int) -> tuple[int, int]:
    x[at : at + 20] += 15 * np.exp(-0.5 * ((np.arange(20) - 10) / 3) ** 2)
    return at, at + 20


def noise_burst(x: np.ndarray, at: int) -> tuple[int, int]:
    x[at : at + 10] += np.random.default_rng(at).normal(0, 8, 10)
    return at, at + 10


def early_beat(x: np.ndarray, at: int) -> tuple[int, int]:
    # a premature beat: one cycle in 65 % of its time, the rest of the wave comes early
    early = np.interp(np.linspace(0, 79, 52), np.arange(80), x[at : at + 80])
    x[:] = np.concatenate([x[:at], early, x[at + 80 :], x[-28:]])[: x.size]
    return at, at + 52


def dropped_beat(x: np.ndarray, at: int) -> tuple[int, int]:
    # a blocked beat: at the next upstroke the pressure goes on falling for 60 samples instead
    at += int(np.argmin(x[at : at + 80]))
    fall = (x[at - 1] - x[at - 11]) / 10
    steps = np.arange(1, 61)
    pause = x[at - 1] + fall * steps * np.exp(-steps / 40)
    x[:] = np.concatenate([x[:at], pause, x[at:]])[: x.size]
    return at, at + 60


CHANGES: dict[str, Callable[[np.ndarray, int], tuple[int, int]]] = {
    "weak beat": weak_beat,
    "early beat": early_beat,
    "dropped beat": dropped_beat,
    "damped trace": damped,
    "extra bump": extra_bump,
    "noise burst": noise_burst,
}


def test_a_wave_has_a_period_and_numerics_have_none() -> None:
    rng = np.random.default_rng(1)
    assert 70 <= period_of(pulse_wave(rng))[0] <= 90
    # heart rate a minute apart, a random walk, beat-to-beat HR with breathing: no cycle
    minute_hr = 75 + np.cumsum(rng.normal(0, 0.5, 1440)) + rng.normal(0, 2, 1440)
    assert period_of(minute_hr) == (0, 0.0)
    beat_hr = 70 + 2 * np.sin(2 * np.pi * np.arange(2000) / 4.5) + rng.normal(0, 0.8, 2000)
    assert period_of(beat_hr) == (0, 0.0)


@pytest.mark.parametrize("change", sorted(CHANGES))
@given(seed=st.integers(0, 10_000))
@settings(deadline=None, max_examples=EXAMPLES)
def test_a_change_of_shape_is_kept_whatever_its_values(change: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    wave = pulse_wave(rng)
    first, last = CHANGES[change](wave, int(rng.integers(800, 4000)))
    decisions = classify_patient(frame(wave), POLICY)
    reasons = decisions.reasons
    discord = reasons[reasons["rule"].str.startswith("waveform-")]["reading_id"].to_numpy()
    at = discord - 1  # ids are positions + 1
    inside = (at >= first - EDGE) & (at < last + EDGE)
    assert inside.any(), (change, first, last, discord)
    # a few readings for the change, not the wave's cycles: compression stays far above 50x
    assert decisions.retained_ids.size <= 25


@given(seed=st.integers(0, 10_000))
@settings(deadline=None, max_examples=2 * EXAMPLES)
def test_a_plain_wave_keeps_nothing_and_its_peaks_are_no_events(seed: int) -> None:
    wave = pulse_wave(np.random.default_rng(seed))
    decisions = classify_patient(frame(wave), POLICY)
    # ECOD alone on these samples keeps the tallest systolic peaks (28-52 of ucr135's 4,150
    # samples before this rule): a wave's extremes are its cycle
    assert decisions.retained_ids.size <= 3, decisions.reasons


def test_discords_keep_the_readings_where_the_shape_broke() -> None:
    wave = pulse_wave(np.random.default_rng(5))
    wave[2000:2003] += 20
    positions, z = discords(wave, period_of(wave)[0])
    assert set(range(2000, 2003)) <= set(positions.tolist())
    assert (z >= 10).all()


def ecg_wave(rng: np.random.Generator, period: int, ectopic_at: int = -1) -> tuple[np.ndarray, int]:
    """ECG samples: per beat a P wave, a QRS a few samples wide and a T wave, each beat 4 %
    longer or shorter; beat ``ectopic_at`` is ventricular: early, wide, tall, T inverted.
    Returns the samples and where the ectopic beat starts."""
    parts: list[np.ndarray] = []
    start = -1
    for beat in range(60):
        if beat == ectopic_at:
            start = sum(part.size for part in parts)
            n = int(period * 0.7)
            x = np.arange(n) / n
            wave = 1.6 * np.exp(-0.5 * ((x - 0.25) / 0.05) ** 2)
            wave -= 0.5 * np.exp(-0.5 * ((x - 0.55) / 0.08) ** 2)
        else:
            n = int(round(period * rng.uniform(0.96, 1.04)))
            x = np.arange(n) / n
            wave = 0.1 * np.exp(-0.5 * ((x - 0.1) / 0.025) ** 2)
            wave += np.exp(-0.5 * ((x - 0.25) / 0.008) ** 2)
            wave -= 0.15 * np.exp(-0.5 * ((x - 0.27) / 0.008) ** 2)
            wave += 0.25 * np.exp(-0.5 * ((x - 0.55) / 0.04) ** 2)
        parts.append(wave)
    samples = np.concatenate(parts)
    return (samples + rng.normal(0, 0.01, samples.size)).round(3), start


@pytest.mark.parametrize("period", [280, 600])  # 360 samples a second at 77/min, 500 at 50/min
def test_an_ecg_is_a_wave_and_its_ventricular_beat_is_kept(period: int) -> None:
    rng = np.random.default_rng(period)
    plain, _ = ecg_wave(rng, period)
    # its R waves are a few samples wide and move by more than that from beat to beat
    assert abs(period_of(plain)[0] - period) <= period // 20
    assert classify_patient(frame(plain), POLICY).retained_ids.size <= 9
    ectopic, start = ecg_wave(rng, period, ectopic_at=30)
    decisions = classify_patient(frame(ectopic), POLICY)
    at = decisions.retained_ids - 1
    assert ((at >= start - EDGE) & (at < start + int(period * 0.7) + EDGE)).any()
    assert decisions.retained_ids.size <= 25


def test_a_flushed_line_is_still_a_wave_under_a_code_no_catalogue_knows() -> None:
    # Without a plausible range, a flush at 300 mmHg stays in the series: it must not outweigh
    # the cycles around it (the PyOD detector would keep the wave's peaks and the flush whole)
    wave = pulse_wave(np.random.default_rng(3))
    wave[2000:2200] = 300.0
    assert 70 <= period_of(wave)[0] <= 90
    decisions = classify_patient(frame(wave), POLICY)
    assert decisions.retained_ids.size <= 25
    rules = set(decisions.reasons["rule"])
    assert "waveform-discord" in rules
    assert not any(r.startswith("statistical") for r in rules)
