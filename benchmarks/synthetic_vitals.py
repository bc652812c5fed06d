"""Synthetic patient-days of per-minute vitals with labelled injected events.

Used by the detect benchmarks (speed and quality); not part of the package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MINUTES = 1440
HR, RR, SPO2, SBP, DBP, TEMP, SAO2 = (
    "8867-4", "9279-1", "59408-5", "8480-6", "8462-4", "8310-5", "2708-6",
)  # fmt: skip
VITALS = (HR, RR, SPO2, SBP, DBP, TEMP, SAO2)
EVENT_KINDS = (
    "spike", "desaturation", "tachycardia", "hypotension", "fever", "step", "bradycardia",
)  # fmt: skip


@dataclass(frozen=True)
class PatientDay:
    frame: pd.DataFrame
    """id, code, t, value sorted by code then t."""
    events: dict[int, list[int]]
    """event number -> ids of the readings that matter."""
    event_kinds: dict[int, str]


def _ar1(rng: np.random.Generator, n: int, sd: float, phi: float) -> np.ndarray:
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    # lfilter-free AR(1): cumulative weighting via a loop-free recurrence is not available in
    # numpy, and n is 1440, so a plain loop is fine for a benchmark generator.
    out = np.empty(n)
    acc = rng.normal(0.0, sd)
    for i in range(n):
        acc = phi * acc + shocks[i]
        out[i] = acc
    return out


def patient_day(
    seed: int, n_events: int = 3, start_ms: int = 1_700_000_000_000 // 86_400_000 * 86_400_000
) -> PatientDay:
    """One patient-day: seven per-minute series, ``n_events`` injected events (labelled)."""
    rng = np.random.default_rng(seed)
    minute = np.arange(MINUTES)
    circadian = np.sin((minute / MINUTES) * 2 * np.pi)
    base = {
        HR: rng.uniform(60, 85) + 5 * circadian + _ar1(rng, MINUTES, 3.0, 0.9),
        RR: rng.uniform(13, 18) + _ar1(rng, MINUTES, 1.2, 0.7),
        SPO2: rng.uniform(96.5, 98.5) + _ar1(rng, MINUTES, 0.8, 0.8),
        SBP: rng.uniform(115, 140) + 6 * circadian + _ar1(rng, MINUTES, 5.0, 0.9),
        DBP: rng.uniform(65, 85) + 4 * circadian + _ar1(rng, MINUTES, 4.0, 0.9),
        TEMP: rng.uniform(36.5, 37.2) + 0.2 * circadian + _ar1(rng, MINUTES, 0.1, 0.98),
        SAO2: rng.uniform(96.5, 98.5) + _ar1(rng, MINUTES, 0.6, 0.9),
    }
    labels: dict[int, list[tuple[str, int]]] = {}
    kinds: dict[int, str] = {}
    slots = rng.choice(np.arange(1, MINUTES // 120 - 1), size=n_events, replace=False) * 120
    for number, slot in enumerate(slots):
        kind = EVENT_KINDS[int(rng.integers(len(EVENT_KINDS)))]
        at = int(slot + rng.integers(0, 60))
        kinds[number] = kind
        labels[number] = _inject(rng, base, kind, at)

    # Artifacts: a sensor-off run on SpO2 and a single implausible HR now and then.
    if rng.random() < 0.5:
        off = int(rng.integers(0, MINUTES - 20))
        base[SPO2][off : off + int(rng.integers(5, 15))] = 0.0
    if rng.random() < 0.5:
        base[HR][int(rng.integers(0, MINUTES))] = 0.0

    parts = []
    next_id = seed * 100_000
    ids_of: dict[tuple[str, int], int] = {}
    for code in VITALS:
        values = base[code]
        if code in (SPO2, SAO2):
            values = np.minimum(values, 100.0)
        values = np.round(values, 1) if code == TEMP else np.round(values)
        ids = np.arange(next_id, next_id + MINUTES, dtype=np.int64)
        next_id += MINUTES
        for m, i in zip(minute, ids, strict=True):
            ids_of[(code, int(m))] = int(i)
        parts.append(
            pd.DataFrame(
                {
                    "id": ids,
                    "code": code,
                    "t": start_ms + minute.astype(np.int64) * 60_000,
                    "value": values.astype(np.float64),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True).sort_values(["code", "t"], ignore_index=True)
    events = {n: [ids_of[key] for key in keys] for n, keys in labels.items()}
    return PatientDay(frame, events, kinds)


def _inject(
    rng: np.random.Generator, base: dict[str, np.ndarray], kind: str, at: int
) -> list[tuple[str, int]]:
    """Add one event to ``base`` in place; return the (code, minute) readings that matter."""
    if kind == "spike":
        code = (HR, SBP, RR)[int(rng.integers(3))]
        size = {HR: 35.0, SBP: 45.0, RR: 12.0}[code] * rng.choice([-1.0, 1.0])
        if code == RR:
            size = abs(size)
        base[code][at] += size
        return [(code, at)]
    if kind == "desaturation":
        length = int(rng.integers(5, 15))
        drop = rng.uniform(5, 9)
        shape = np.sin(np.linspace(0, np.pi, length))
        base[SPO2][at : at + length] -= drop * shape
        base[HR][at : at + length] += rng.uniform(15, 25) * shape
        return [(SPO2, at + i) for i in range(length)] + [(HR, at + i) for i in range(length)]
    if kind == "tachycardia":
        length = int(rng.integers(10, 30))
        base[HR][at : at + length] = rng.uniform(118, 140) + rng.normal(0, 2, length)
        return [(HR, at + i) for i in range(length)]
    if kind == "bradycardia":
        length = int(rng.integers(5, 15))
        base[HR][at : at + length] = rng.uniform(35, 45) + rng.normal(0, 1.5, length)
        return [(HR, at + i) for i in range(length)]
    if kind == "hypotension":
        length = int(rng.integers(10, 25))
        base[SBP][at : at + length] = rng.uniform(78, 92) + rng.normal(0, 2, length)
        base[DBP][at : at + length] -= 15
        return [(SBP, at + i) for i in range(length)] + [(DBP, at + i) for i in range(length)]
    if kind == "fever":
        length = 60
        base[TEMP][at : at + length] += np.linspace(0, 2.6, length)
        return [(TEMP, at + i) for i in range(length) if i >= length // 2]
    # step: a sudden rise inside the normal band that a rule cannot see.
    length = int(rng.integers(10, 20))
    base[HR][at : at + length] += 22
    return [(HR, at + i) for i in range(length)]
