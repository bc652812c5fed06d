"""Labelled synthetic series of the kinds medsleep.synth does not make: 1/s monitors with MDC
codes, beat-to-beat heart rate with ectopic beats and an SVT run, a code in no catalogue, and
sparse outpatient series. Used by ``quality.py --cases extended``.

Every labelled event is a window of one patient and code; ``labels`` has the same columns as
the generator's ``labels.csv`` (event, patient, code, start_ms, end_ms).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

START_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z
MDC = "urn:iso:std:iso:11073:10101"
LOINC = "http://loinc.org"
UNITS = {"147842": "/min", "150456": "%", "8867-4": "/min", "8480-6": "mm[Hg]", "4548-4": "%"}


def _obs(rid: str, patient: str, system: str, code: str, t_ms: int, value: float) -> str:
    unit = UNITS.get(code, "1")
    when = pd.Timestamp(t_ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return json.dumps(
        {
            "resourceType": "Observation",
            "id": rid,
            "meta": {"versionId": "1"},
            "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": when,
            "valueQuantity": {"value": round(float(value), 2), "unit": unit, "code": unit},
        },
        separators=(",", ":"),
    )


def generate_extended(out: Path, seed: int = 5) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    labels: list[tuple[str, str, str, int, int]] = []

    def window(event: str, patient: str, code: str, start: int, end: int) -> None:
        labels.append((event, patient, code, start, end))

    # 1/s bedside monitors (MDC codes): a 4-minute tachycardia and a 3-minute desaturation.
    for p in range(6):
        patient, n = f"sec-{p}", 2 * 3600
        t = START_MS + np.arange(n) * 1000
        hr = 72 + np.cumsum(rng.normal(0, 0.02, n)) + rng.normal(0, 1.0, n)
        spo2 = 97 + rng.normal(0, 0.4, n)
        a, b = int(rng.integers(900, 3000)), int(rng.integers(3600, 6000))
        hr[a : a + 240] += 40
        spo2[b : b + 180] -= 9
        window("tachycardia", patient, "147842", int(t[a]), int(t[a + 240]))
        window("desaturation", patient, "150456", int(t[b]), int(t[b + 180]))
        for code, values in (("147842", np.round(hr)), ("150456", np.round(spo2, 1))):
            lines += [
                _obs(f"{patient}-{code}-{i}", patient, MDC, code, int(t[i]), values[i])
                for i in range(n)
            ]  # noqa: E501

    # Beat-to-beat heart rate: ectopic beats (premature + compensatory pause) and an SVT run.
    for p in range(6):
        patient, n = f"beat-{p}", 2400
        hr = 66 + 3 * np.sin(np.arange(n) / 30) + rng.normal(0, 0.7, n)
        ectopic = np.sort(rng.choice(np.arange(50, 1500), 15, replace=False))
        hr[ectopic] *= 1.25 + rng.uniform(0, 0.15, ectopic.size)  # 20-30 % shorter RR
        hr[ectopic + 1] *= 0.85
        svt = int(rng.integers(1700, 2100))
        hr[svt : svt + 200] = 100 + rng.normal(0, 1.0, 200)  # ~2 min at ~100/min
        t = START_MS + np.cumsum(60_000 / hr).astype(np.int64)
        for e in ectopic:
            window("ectopic", patient, "8867-4", int(t[e]), int(t[e]) + 1)
        window("svt", patient, "8867-4", int(t[svt]), int(t[svt + 199]) + 1)
        lines += [
            _obs(f"{patient}-{i}", patient, LOINC, "8867-4", int(t[i]), hr[i]) for i in range(n)
        ]  # noqa: E501

    # A code in no catalogue, one a minute for a day, with a 20-minute step.
    for p in range(4):
        patient, n = f"local-{p}", 1440
        t = START_MS + np.arange(n) * 60_000
        v = 40 + np.cumsum(rng.normal(0, 0.05, n)) + rng.normal(0, 0.5, n)
        a = int(rng.integers(100, 1300))
        v[a : a + 20] += 8
        window("local-step", patient, "x-local-1", int(t[a]), int(t[a + 20]))
        lines += [
            _obs(f"{patient}-{i}", patient, "urn:local", "x-local-1", int(t[i]), v[i])
            for i in range(n)
        ]  # noqa: E501

    # Sparse outpatient series: a blood pressure and an HbA1c every three months for 3 years.
    for p in range(20):
        patient = f"out-{p}"
        for k in range(12):
            t = START_MS + k * 91 * 86_400_000
            sbp = float(rng.normal(128, 12))
            a1c = float(rng.normal(5.4, 0.3))
            if k == 7:
                sbp, a1c = 186.0, 8.1  # a hypertensive crisis, a diabetic HbA1c
                window("crisis", patient, "8480-6", t, t + 1)
                window("hba1c", patient, "4548-4", t, t + 1)
            lines.append(_obs(f"{patient}-sbp-{k}", patient, LOINC, "8480-6", t, round(sbp)))
            lines.append(_obs(f"{patient}-a1c-{k}", patient, LOINC, "4548-4", t, round(a1c, 1)))

    return _write(out / "extended.ndjson", lines, labels)


def _write(
    path: Path, lines: list[str], labels: list[tuple[str, str, str, int, int]]
) -> tuple[Path, pd.DataFrame]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    frame = pd.DataFrame(labels, columns=["event", "patient", "code", "start_ms", "end_ms"])
    return path, frame


def _sinus(rng: np.random.Generator, n: int, base: float) -> FloatArray:
    """Beat-to-beat sinus heart rate around ``base``: respiratory sinus arrhythmia (a breath
    every ~4 beats, +-2/min), a slow wander and beat noise, as in real RR series."""
    beats = np.arange(n)
    rsa = 2.0 * np.sin(2 * np.pi * beats / rng.uniform(3.5, 5.0))
    wander = np.cumsum(rng.normal(0, 0.05, n))
    wander -= np.linspace(wander[0], wander[-1], n)  # a wander, not a drift away
    return base + rsa + wander + rng.normal(0, 0.8, n)


def generate_rhythms(out: Path, seed: int = 7, patients: int = 12) -> tuple[Path, pd.DataFrame]:
    """Beat-to-beat heart rate with the rhythm events the issue lists, at their real, subtle
    size, in records of the length real ones have. Every record has 12 ectopic beats at
    72-88/min among ~70/min, each followed by its compensatory pause (the two RR intervals
    sum to two normal ones). Half-hour records (as in the MIT-BIH arrhythmia database) hold
    an SVT run of 2-3 minutes at ~100/min against a ~66/min baseline (a tenth of the record:
    more than the detector's 5 % contamination ceiling), alone or after 3 minutes of atrial
    fibrillation (irregularly irregular RR at a similar mean rate); every third record is a
    3.5-hour night with an unseeded sustained deviation instead: 20 minutes 15/min above the
    patient's own baseline, inside the NEWS2 normal band, reached gradually over two minutes
    (no beat stands out from its neighbours)."""
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    labels: list[tuple[str, str, str, int, int]] = []
    for p in range(patients):
        patient, code = f"rhythm-{p}", "8867-4"
        night = p % 3 == 2
        n = 14400 if night else 2100  # ~3.5 hours or ~30 minutes of beats
        base = float(rng.uniform(64, 72))
        hr = _sinus(rng, n, base)
        spans: list[tuple[str, int, int]] = []
        start = int(rng.integers(300, n // 3))
        if night:
            dev_len = 1500  # ~20 min at ~85/min
            ramp = np.clip(np.arange(dev_len) / 120, 0, 1) * np.clip(
                (dev_len - np.arange(dev_len)) / 120, 0, 1
            )
            hr[start : start + dev_len] += 15 * ramp
            spans.append(("sustained", start + 120, start + dev_len - 120))
        elif p % 3 == 0:
            svt_len = int(rng.integers(200, 300))  # 2-3 min at ~100/min
            hr[start : start + svt_len] = 100 + rng.normal(0, 1.0, svt_len)
            spans.append(("svt-long", start, start + svt_len))
        else:
            af_len = 240  # ~3 min
            rr = rng.uniform(0.55, 1.15, af_len) * 60_000 / base  # irregularly irregular RR
            hr[start : start + af_len] = 60_000 / rr
            spans.append(("af", start, start + af_len))
            # ... and, as in mixed-rhythm records (MIT-BIH 201, 203), an SVT run later on:
            # the AF beats now take the detector's top ranks.
            svt = start + af_len + int(rng.integers(150, 300))
            svt_len = int(rng.integers(200, 300))
            hr[svt : svt + svt_len] = 100 + rng.normal(0, 1.0, svt_len)
            spans.append(("svt-long", svt, svt + svt_len))
        quiet = np.ones(n, dtype=np.bool_)
        for _, a, b in spans:
            quiet[max(a - 20, 0) : b + 20] = False
        quiet[:5] = quiet[-5:] = False
        candidates = np.flatnonzero(quiet[:-2] & quiet[1:-1] & quiet[2:])
        ectopic = np.sort(rng.choice(candidates, 12, replace=False))
        ectopic = ectopic[np.concatenate(([True], np.diff(ectopic) > 3))]
        for e in ectopic:
            normal_rr = 60_000 / hr[e - 1]
            short = 60_000 / rng.uniform(72, 88)
            hr[e] = 60_000 / min(short, normal_rr * 0.97)
            hr[e + 1] = 60_000 / (2 * normal_rr - 60_000 / hr[e])  # compensatory pause
        t = START_MS + np.cumsum(60_000 / hr).astype(np.int64)
        for e in ectopic:
            labels.append(("ectopic-subtle", patient, code, int(t[e]), int(t[e]) + 1))
        for kind, a, b in spans:
            labels.append((kind, patient, code, int(t[a]), int(t[b - 1]) + 1))
        lines += [_obs(f"{patient}-{i}", patient, LOINC, code, int(t[i]), hr[i]) for i in range(n)]
    return _write(out / "rhythms.ndjson", lines, labels)
