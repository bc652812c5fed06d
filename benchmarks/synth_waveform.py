"""Changes of shape in a real sampled wave: ``ucr135``'s arterial pressure wave before its own
labelled event, with one change injected per case.

Raw samples of a wave go wrong by shape rather than by value: a beat of lower amplitude, a
trace flattened for a moment, a small extra bump, a spike, a step in level for two beats, one
cycle played slower, a burst of noise (the kind ``ucr135``'s own event is), a premature or a
dropped beat. Each case is the same 4,150 real samples (one a minute, as ``ucr135`` is given;
about 22 cycles of 183 samples) with one change at a random place, labelled as one event: one
kept reading inside it is enough, as for ``ucr135``. The labels are the changed samples.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from medsleep.evaluate.scoring import Labels

SOURCE = Path(__file__).resolve().parent.parent / "fixtures" / "real-labelled" / "ucr135.ndjson.gz"
NORMAL = 4150
"""Samples of ``ucr135`` before its labelled event (4187-4198)."""
START = datetime(2026, 1, 5, tzinfo=UTC)
MDC = "urn:iso:std:iso:11073:10101"
CYCLE = 183
"""Its cycle in samples (the peak of its autocorrelation)."""

Change = Callable[[np.ndarray, int, np.random.Generator], tuple[int, int]]


def _noise(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    x[at : at + 12] += rng.normal(0, 4, 12)
    return at, at + 12


def _weak_beat(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    beat = x[at : at + CYCLE]
    x[at : at + CYCLE] = beat.mean() + 0.6 * (beat - beat.mean())
    return at, at + CYCLE


def _flat(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    x[at : at + 40] = x[at]
    return at, at + 40


def _spike(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    x[at : at + 3] += 25
    return at, at + 3


def _step(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    x[at : at + 2 * CYCLE] -= 8
    return at, at + 2 * CYCLE


def _slow_cycle(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    beat = x[at : at + CYCLE]
    slow = np.interp(np.linspace(0, CYCLE - 1, int(CYCLE * 1.5)), np.arange(CYCLE), beat)
    x[:] = np.concatenate([x[:at], slow, x[at + CYCLE :]])[: x.size]
    return at, at + slow.size


def _early_beat(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    # a premature beat: one cycle played in 65 % of its time, the next one comes early
    beat = x[at : at + CYCLE]
    early = np.interp(np.linspace(0, CYCLE - 1, int(CYCLE * 0.65)), np.arange(CYCLE), beat)
    x[:] = np.concatenate([x[:at], early, x[at + CYCLE :], x[-CYCLE:]])[: x.size]
    return at, at + early.size


def _dropped_beat(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    # a blocked beat: at the next upstroke the pressure goes on falling for 120 samples
    at += int(np.argmin(x[at : at + CYCLE]))
    fall = (x[at - 1] - x[at - 11]) / 10
    steps = np.arange(1, 121)
    pause = x[at - 1] + fall * steps * np.exp(-steps / 80)
    x[:] = np.concatenate([x[:at], pause, x[at:]])[: x.size]
    return at, at + 120


def _extra_bump(x: np.ndarray, at: int, rng: np.random.Generator) -> tuple[int, int]:
    x[at : at + 40] += 10 * np.exp(-0.5 * ((np.arange(40) - 20) / 6) ** 2)
    return at, at + 40


CHANGES: dict[str, Change] = {
    "dropped-beat": _dropped_beat,
    "early-beat": _early_beat,
    "extra-bump": _extra_bump,
    "flat": _flat,
    "noise": _noise,
    "slow-cycle": _slow_cycle,
    "spike": _spike,
    "step": _step,
    "weak-beat": _weak_beat,
}


def waveform_cases(
    per_kind: int = 3, seed: int = 7, step_ms: float | None = None, mdc: bool = False
) -> Iterator[tuple[str, list[dict[str, Any]], Labels]]:
    """(kind, resources, labels) for ``per_kind`` cases of each change; ``step_ms`` re-times
    the samples that far apart (as a monitor sends raw samples: 8 ms at 125 a second), ``mdc``
    sends them under the device code for arterial pressure (MDC_PRESS_BLD_ART, 150016)."""
    with gzip.open(SOURCE, "rt") as handle:
        source = [json.loads(line) for line in handle if line.strip()][:NORMAL]
    normal = np.array([r["valueQuantity"]["value"] for r in source], dtype=np.float64)
    rng = np.random.default_rng(seed)
    for kind, change in CHANGES.items():
        for _ in range(per_kind):
            x = normal.copy()
            first, last = change(x, int(rng.integers(1200, 3700)), rng)
            resources = []
            for i, (original, value) in enumerate(zip(source, x, strict=True)):
                resource = copy.deepcopy(original)
                resource["id"] = f"wave-{i:05d}"
                resource["valueQuantity"]["value"] = round(float(value), 2)
                if step_ms is not None:
                    at = START + timedelta(milliseconds=i * step_ms)
                    resource["effectiveDateTime"] = at.isoformat(timespec="milliseconds")[:-6] + "Z"
                if mdc:
                    resource["code"] = {"coding": [{"system": MDC, "code": "150016"}]}
                resources.append(resource)
            ids = frozenset(f"wave-{i:05d}" for i in range(first, last))
            yield kind, resources, Labels(ids, event=True)
