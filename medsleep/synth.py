"""Deterministic synthetic ICU monitoring as FHIR R4 Observation NDJSON.

One reading a minute of heart rate, respiratory rate, SpO2 and arterial blood pressure (a
85354-9 panel with systolic/diastolic components), temperature every 15 minutes and four labs
every 6 hours, for each patient. Values follow a per-patient baseline, a circadian drift (lowest
around 04:00 UTC) and AR(1) noise, rounded as monitors do. Sensor artifacts (zeros, detached
SpO2 runs, HR spikes, dropouts) and clinical events (tachycardia, desaturation, hypotension,
fever) are injected; events go to ``labels.csv``, artifacts to ``artifacts.csv``.

Same arguments, same bytes: every patient draws from its own ``numpy`` stream seeded with
``(seed, patient_number)``. Output is streamed one patient-day at a time in constant memory.

The checked-in sample is regenerated with::

    generate(Path("fixtures/sample"), patients=3, days=1, seed=7, compress=True)
"""

from __future__ import annotations

import csv
import gzip
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

__all__ = [
    "DEFAULT_START",
    "LABEL_HEADER",
    "GenerationSummary",
    "generate",
    "iter_ndjson",
    "iter_observations",
    "patient_id",
    "uses_fahrenheit",
]

logger = logging.getLogger(__name__)

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
MINUTES_PER_DAY = 1440
TEMPERATURE_EVERY = 15  # minutes, clock-aligned
LAB_EVERY = 360  # minutes, at a per-patient clock offset
FAHRENHEIT_EVERY = 10  # patient numbers 3, 13, 23, ... report temperature in [degF]
LABEL_HEADER = ("event", "patient", "code", "start", "end")

HR, RR, SPO2, TEMP = "8867-4", "9279-1", "59408-5", "8310-5"
BP, SBP, DBP = "85354-9", "8480-6", "8462-4"
K, NA, GLU, ICA = "2823-3", "2951-2", "2345-7", "1994-3"

_UCUM = "http://unitsofmeasure.org"
_LOINC = "http://loinc.org"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_DISPLAY = {
    HR: "Heart rate",
    RR: "Respiratory rate",
    SPO2: "Oxygen saturation in Arterial blood by Pulse oximetry",
    TEMP: "Body temperature",
    BP: "Blood pressure panel with all children optional",
    SBP: "Systolic blood pressure",
    DBP: "Diastolic blood pressure",
    K: "Potassium [Moles/volume] in Serum or Plasma",
    NA: "Sodium [Moles/volume] in Serum or Plasma",
    GLU: "Glucose [Mass/volume] in Serum or Plasma",
    ICA: "Calcium.ionized [Moles/volume] in Blood",
}
# code -> (unit, UCUM code, printf format of the value)
_QUANTITY = {
    HR: ("/min", "/min", "%d"),
    RR: ("/min", "/min", "%d"),
    SPO2: ("%", "%", "%d"),
    K: ("mmol/L", "mmol/L", "%.1f"),
    NA: ("mmol/L", "mmol/L", "%.0f"),
    GLU: ("mg/dL", "mg/dL", "%.0f"),
    ICA: ("mmol/L", "mmol/L", "%.2f"),
}
_LABS = (K, NA, GLU, ICA)
_GIVEN = ("Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hugo", "Ines", "Jonas", "Kaia")
_FAMILY = ("Synthwood", "Testbury", "Mockley", "Fakeham", "Simsworth", "Dummond", "Placeholt")


@dataclass(frozen=True)
class GenerationSummary:
    """What `generate` wrote. ``readings`` counts values: a BP panel holds two."""

    patients: int
    observations: int
    readings: int
    events: int
    artifacts: int
    files: tuple[Path, ...]


@dataclass(frozen=True)
class _EventKind:
    name: str
    series: str  # the series driven to ``target``
    codes: tuple[str, ...]  # label rows, one per affected code
    duration: tuple[int, int]  # plateau minutes, inclusive range
    ramp: int  # minutes of ramp in and out, outside the labelled plateau
    target: tuple[float, float]
    clip: tuple[float, float]  # plateau values are held in here so every labelled one is abnormal
    jitter: float  # how much of the series' own noise rides on the plateau
    weight: float


_EVENT_KINDS = (
    _EventKind("tachycardia", HR, (HR,), (10, 40), 5, (120, 150), (115, 165), 1.0, 0.3),
    _EventKind("desaturation", SPO2, (SPO2, HR), (5, 30), 3, (82, 88), (78, 91), 2.0, 0.3),
    _EventKind("hypotension", SBP, (SBP,), (10, 40), 5, (66, 82), (55, 88), 0.6, 0.25),
    _EventKind("fever", TEMP, (TEMP,), (60, 240), 30, (38.7, 39.8), (38.55, 40.5), 1.0, 0.15),
)
# code -> (AR(1) phi per minute, AR sd, circadian half-swing, white measurement noise sd)
_NOISE = {
    HR: (0.97, 3.0, 5.0, 1.0),
    RR: (0.9, 1.0, 1.0, 0.8),
    SPO2: (0.95, 0.7, 0.4, 0.4),
    TEMP: (0.995, 0.12, 0.25, 0.03),
    SBP: (0.95, 5.0, 7.0, 1.5),
    DBP: (0.9, 2.5, 0.0, 1.0),  # rides on systolic times the patient's ratio
}
_EVENT_GAP = 30  # quiet minutes between the ramps of two events


@dataclass(frozen=True)
class _Event:
    kind: _EventKind
    start: int  # first plateau minute from the timeline start
    end: int  # exclusive
    target: float
    hr_rise: float


@dataclass(frozen=True)
class _Artifact:
    name: str
    code: str
    start: int
    length: int
    value: int


def patient_id(number: int) -> str:
    """The id of the 1-based patient ``number``: ``patient_id(1) == "icu-0001"``."""
    return f"icu-{number:04d}"


def uses_fahrenheit(number: int) -> bool:
    """Whether patient ``number`` reports temperature in [degF] (every tenth, from icu-0003)."""
    return number % FAHRENHEIT_EVERY == 3


def generate(
    out_dir: Path,
    patients: int,
    days: float,
    seed: int,
    start: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    dropout_rate: float = 0.005,
    compress: bool = False,
) -> GenerationSummary:
    """Write synthetic ICU monitoring for ``patients`` over ``days`` into ``out_dir``.

    Files: ``observations.ndjson`` (``.ndjson.gz`` with ``compress``), ``patients.ndjson``,
    ``labels.csv`` (clinical events) and ``artifacts.csv`` (sensor artifacts), both with columns
    ``event,patient,code,start,end`` where ``[start, end)`` is half-open and covers exactly the
    affected readings. ``progress`` is called after each patient's UTC calendar day with the
    number of Observations just written. ``dropout_rate`` is the chance that a due vital-sign
    reading is missing (labs never drop out). Existing files of the same names are replaced.

    >>> generate(Path("out"), patients=3, days=1, seed=7)  # doctest: +SKIP
    """
    t0 = _check(patients, days, start, dropout_rate)
    out_dir.mkdir(parents=True, exist_ok=True)
    obs_name = "observations.ndjson.gz" if compress else "observations.ndjson"
    names = (obs_name, "patients.ndjson", "labels.csv", "artifacts.csv")
    final = tuple(out_dir / name for name in names)
    partial = tuple(path.with_name(f".{path.name}.partial") for path in final)
    stale = out_dir / ("observations.ndjson" if compress else "observations.ndjson.gz")
    observations = readings = events = artifacts = 0
    try:
        with ExitStack() as stack:
            raw = stack.enter_context(partial[0].open("wb"))
            obs: IO[bytes] | gzip.GzipFile = raw
            if compress:
                gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
                obs = stack.enter_context(gz)
            pat = stack.enter_context(partial[1].open("wb"))
            label_csv, artifact_csv = (
                csv.writer(stack.enter_context(path.open("w", newline="")), lineterminator="\n")
                for path in partial[2:]
            )
            label_csv.writerow(LABEL_HEADER)
            artifact_csv.writerow(LABEL_HEADER)
            for number in range(1, patients + 1):
                sim = _Patient(number, seed, t0, round(days * MINUTES_PER_DAY), dropout_rate)
                pat.write(sim.patient_json() + b"\n")
                label_csv.writerows(sim.label_rows())
                artifact_csv.writerows(sim.artifact_rows())
                events += len(sim.events)
                artifacts += len(sim.artifacts)
                for text, n_obs, n_readings in sim.chunks():
                    obs.write(text.encode())
                    observations += n_obs
                    readings += n_readings
                    if progress is not None:
                        progress(n_obs)
        for src, dst in zip(partial, final, strict=True):
            os.replace(src, dst)
    finally:
        _remove(partial)  # only leftovers of a failed run remain to be removed
    if stale.exists():
        stale.unlink()  # a leftover of the other format would disagree with the new labels
    logger.info("synthesised %d observations for %d patients", observations, patients)
    return GenerationSummary(patients, observations, readings, events, artifacts, final)


def iter_ndjson(
    patients: int,
    days: float,
    seed: int,
    start: datetime | None = None,
    *,
    dropout_rate: float = 0.005,
) -> Iterator[str]:
    """Yield the text of ``observations.ndjson`` one patient-day block at a time."""
    t0 = _check(patients, days, start, dropout_rate)
    for number in range(1, patients + 1):
        sim = _Patient(number, seed, t0, round(days * MINUTES_PER_DAY), dropout_rate)
        for text, _, _ in sim.chunks():
            yield text


def iter_observations(
    patients: int,
    days: float,
    seed: int,
    start: datetime | None = None,
    *,
    dropout_rate: float = 0.005,
) -> Iterator[dict[str, Any]]:
    """Yield the Observations `generate` would write, as dicts, in the same order."""
    for block in iter_ndjson(patients, days, seed, start, dropout_rate=dropout_rate):
        for line in block.splitlines():
            yield orjson.loads(line)


def _check(patients: int, days: float, start: datetime | None, dropout_rate: float) -> datetime:
    t0 = DEFAULT_START if start is None else start
    if patients < 1 or round(days * MINUTES_PER_DAY) < 1:
        raise ValueError("need at least one patient and one minute")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError("dropout_rate must be in [0, 1)")
    if t0.tzinfo is None or t0.second or t0.microsecond:
        raise ValueError("start must be timezone-aware and on a whole minute")
    return t0.astimezone(UTC)


def _remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float, x0: float) -> np.ndarray:
    """AR(1) noise with stationary standard deviation ``sd``, continuing from ``x0``.

    Vectorised in blocks of 32 (x_k = phi**k * cumsum(e_j * phi**-j)) so that phi**-32 stays
    small enough to keep full precision; only the carries between blocks loop in Python.
    """
    e = rng.normal(0.0, sd * math.sqrt(1.0 - phi * phi), n)
    size = 32
    blocks = -(-n // size)
    k = np.arange(size)
    padded = np.zeros(blocks * size)
    padded[:n] = e
    partial = np.cumsum(padded.reshape(blocks, size) * phi ** (-k), axis=1) * phi**k
    carries = np.empty(blocks)
    carry, decay = x0, phi**size
    for b, last in enumerate(partial[:, -1].tolist()):
        carries[b] = carry
        carry = decay * carry + last
    out: np.ndarray = (partial + carries[:, None] * phi ** (k + 1)).ravel()[:n]
    return out


def _template(patient: str, code: str, category: str, value_fmt: str, **extra: Any) -> str:
    """A printf template of one Observation line taking (epoch minute, timestamp, value...)."""
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"{patient}-{code}-@M@",
        "meta": {"versionId": "1"},
        "status": "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": _LOINC, "code": code, "display": _DISPLAY[code]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "@T@",
    }
    obs.update(extra)
    text = orjson.dumps(obs).decode().replace("%", "%%")
    return text.replace("@M@", "%d").replace("@T@", "%s").replace('"@V@"', value_fmt) + "\n"


def _quantity(unit: str, code: str) -> dict[str, str]:
    return {"value": "@V@", "unit": unit, "system": _UCUM, "code": code}


class _Patient:
    """One simulated patient: plans events and artifacts, then renders one day at a time."""

    def __init__(self, number: int, seed: int, t0: datetime, minutes: int, dropout: float):
        self.pid = patient_id(number)
        self.t0, self.minutes, self.dropout = t0, minutes, dropout
        self.fahrenheit = uses_fahrenheit(number)
        self.rng = rng = np.random.default_rng([seed, number])
        self.given = _GIVEN[int(rng.integers(len(_GIVEN)))]
        self.family = _FAMILY[int(rng.integers(len(_FAMILY)))]
        self.female, self.birth_days = bool(rng.integers(2)), int(rng.integers(18 * 365, 90 * 365))
        u = rng.uniform
        self.base = {HR: u(60, 95), RR: u(12, 18), SPO2: u(95, 99), TEMP: u(36.4, 37.3)}
        # The DBP entry is the patient's diastolic/systolic ratio, not a pressure.
        self.base |= {SBP: u(105, 140), DBP: u(0.55, 0.65)}
        self.labs = {K: u(3.6, 4.8), NA: u(136, 143), GLU: u(90, 150), ICA: u(1.12, 1.30)}
        self.lab_offset = int(rng.integers(LAB_EVERY))
        self.noise = dict.fromkeys((HR, RR, SPO2, TEMP, SBP, DBP), 0.0)
        self.events = self._plan_events(minutes / MINUTES_PER_DAY)
        self.artifacts = self._plan_artifacts(minutes / MINUTES_PER_DAY)
        p = self.pid
        vital = "vital-signs"
        self.tmpl = {
            c: _template(p, c, vital, _QUANTITY[c][2], valueQuantity=_quantity(*_QUANTITY[c][:2]))
            for c in (HR, RR, SPO2)
        }
        t_unit = ("degF", "[degF]") if self.fahrenheit else ("Cel", "Cel")
        self.tmpl[TEMP] = _template(p, TEMP, vital, "%.1f", valueQuantity=_quantity(*t_unit))
        mmhg = _quantity("mmHg", "mm[Hg]")
        components = [
            {
                "code": {"coding": [{"system": _LOINC, "code": c, "display": _DISPLAY[c]}]},
                "valueQuantity": mmhg,
            }
            for c in (SBP, DBP)
        ]
        self.tmpl[BP] = _template(p, BP, vital, "%d", component=components)
        for c in _LABS:
            unit, ucum, fmt = _QUANTITY[c]
            self.tmpl[c] = _template(p, c, "laboratory", fmt, valueQuantity=_quantity(unit, ucum))

    def patient_json(self) -> bytes:
        birth = (self.t0 - timedelta(days=self.birth_days)).date().isoformat()
        return orjson.dumps(
            {
                "resourceType": "Patient",
                "id": self.pid,
                "meta": {"versionId": "1"},
                "active": True,
                "name": [{"use": "official", "family": self.family, "given": [self.given]}],
                "gender": "female" if self.female else "male",
                "birthDate": birth,
            }
        )

    def _at(self, minute: int) -> str:
        return _iso(self.t0 + timedelta(minutes=minute))

    def label_rows(self) -> list[tuple[str, str, str, str, str]]:
        return [
            (e.kind.name, self.pid, code, self._at(e.start), self._at(e.end))
            for e in self.events
            for code in e.kind.codes
        ]

    def artifact_rows(self) -> list[tuple[str, str, str, str, str]]:
        return [
            (a.name, self.pid, a.code, self._at(a.start), self._at(a.start + a.length))
            for a in self.artifacts
        ]

    def _plan_events(self, days: float) -> list[_Event]:
        rng, kinds = self.rng, _EVENT_KINDS
        low = max(1, math.floor(days))
        count = int(rng.integers(low, max(low, math.ceil(3 * days)) + 1))
        weights = np.array([k.weight for k in kinds])
        busy: list[tuple[int, int]] = []
        events: list[_Event] = []
        for _ in range(count):
            kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            for _attempt in range(20):
                length = int(rng.integers(kind.duration[0], kind.duration[1] + 1))
                first, last = kind.ramp + 1, self.minutes - length - kind.ramp - 1
                if last <= first:
                    break
                start = int(rng.integers(first, last))
                span = (start - kind.ramp - _EVENT_GAP, start + length + kind.ramp + _EVENT_GAP)
                if all(span[1] <= b0 or b1 <= span[0] for b0, b1 in busy):
                    busy.append(span)
                    target = float(rng.uniform(*kind.target))
                    events.append(_Event(kind, start, start + length, target, rng.uniform(20, 35)))
                    break
        return sorted(events, key=lambda e: e.start)

    def _plan_artifacts(self, days: float) -> list[_Artifact]:
        rng = self.rng
        # Artifacts stay clear of events so every labelled reading is a clinical one.
        busy = [(e.start - e.kind.ramp - 5, e.end + e.kind.ramp + 5) for e in self.events]
        planned: list[_Artifact] = []
        for name, code, rate, lengths, values in (
            ("artifact-zero", HR, 1.5, (1, 1), (0, 0)),
            ("artifact-zero", SPO2, 1.5, (1, 1), (0, 0)),
            ("artifact-spike", HR, 1.5, (1, 1), (250, 300)),
            ("artifact-run", SPO2, 1.0, (3, 12), (0, 0)),
        ):
            for _ in range(int(rng.poisson(rate * days))):
                length = int(rng.integers(lengths[0], lengths[1] + 1))
                start = int(rng.integers(0, max(1, self.minutes - length)))
                value = int(rng.integers(values[0], values[1] + 1))
                end = start + length
                if end <= self.minutes and all(end <= b0 or b1 <= start for b0, b1 in busy):
                    busy.append((start - 2, end + 2))
                    planned.append(_Artifact(name, code, start, length, value))
        return sorted(planned, key=lambda a: (a.start, a.code))

    def chunks(self) -> Iterator[tuple[str, int, int]]:
        """Yield (NDJSON text, Observations, readings) for each UTC calendar day touched."""
        day0 = self.t0.replace(hour=0, minute=0)
        offset = (self.t0 - day0) // timedelta(minutes=1)
        a = 0
        while a < self.minutes:
            b = min(self.minutes, a + MINUTES_PER_DAY - (offset + a) % MINUTES_PER_DAY)
            date = (day0 + timedelta(minutes=offset + a)).date().isoformat()
            yield self._render(a, b, (offset + a) % MINUTES_PER_DAY, date)
            a = b

    def _series(self, a: int, b: int, clock: np.ndarray) -> dict[str, np.ndarray]:
        rng, base, noise = self.rng, self.base, self.noise
        circadian = -np.cos(2 * np.pi * (clock - 240) / MINUTES_PER_DAY)  # lowest at 04:00
        out: dict[str, np.ndarray] = {}
        wobble: dict[str, np.ndarray] = {}
        for code, (phi, sd, swing, white) in _NOISE.items():
            ar = _ar1(rng, b - a, phi, sd, noise[code])
            noise[code] = float(ar[-1])
            wobble[code] = ar + rng.normal(0.0, white, b - a)
            out[code] = base[code] + swing * circadian + wobble[code]
        minute = np.arange(a, b)
        for ev in self.events:
            kind = ev.kind
            if ev.end + kind.ramp <= a or b <= ev.start - kind.ramp:
                continue
            rise = (minute - (ev.start - kind.ramp)) / kind.ramp
            fall = (ev.end - 1 + kind.ramp - minute) / kind.ramp
            w = np.clip(np.minimum(rise, fall), 0.0, 1.0)
            plateau = (minute >= ev.start) & (minute < ev.end)
            code = kind.series
            shifted = (1 - w) * out[code] + w * (ev.target + kind.jitter * wobble[code])
            out[code] = np.where(plateau, np.clip(shifted, *kind.clip), shifted)
            if kind.name == "desaturation":
                out[HR] = out[HR] + w * ev.hr_rise
                out[RR] = out[RR] + w * 4.0
        out[DBP] = out[SBP] * base[DBP] + wobble[DBP]
        return out

    def _render(self, a: int, b: int, clock0: int, date: str) -> tuple[str, int, int]:
        n = b - a
        clock = np.arange(clock0, clock0 + n)
        s = self._series(a, b, clock)
        rint = {c: np.rint(s[c]).astype(np.int64) for c in (HR, RR, SPO2, SBP, DBP)}
        rint[HR] = np.clip(rint[HR], 30, 220)
        rint[RR] = np.clip(rint[RR], 4, 60)
        rint[SPO2] = np.clip(rint[SPO2], 60, 100)
        rint[SBP] = np.clip(rint[SBP], 50, 220)
        rint[DBP] = np.clip(rint[DBP], 25, rint[SBP] - 15)
        keep = {c: self.rng.random(n) >= self.dropout for c in (HR, RR, SPO2, BP, TEMP)}
        for art in self.artifacts:
            lo, hi = max(art.start, a) - a, min(art.start + art.length, b) - a
            if lo < hi:
                rint[art.code][lo:hi] = art.value
                keep[art.code][lo:hi] = True  # an artifact is a reading, never a dropout
        temp = s[TEMP] * 1.8 + 32.0 if self.fahrenheit else s[TEMP]
        keep[TEMP] &= clock % TEMPERATURE_EVERY == 0
        lab_due = (clock - self.lab_offset) % LAB_EVERY == 0
        n_labs = int(lab_due.sum())
        lab_noise = {K: 0.15, NA: 1.5, GLU: 15.0, ICA: 0.03}
        lab_values = {c: self.labs[c] + self.rng.normal(0, lab_noise[c], n_labs) for c in _LABS}
        stamps = [f"{date}T{m // 60:02d}:{m % 60:02d}:00Z" for m in clock.tolist()]
        epoch = int(self.t0.timestamp()) // 60 + a
        ids = list(range(epoch, epoch + n))
        tmpl = self.tmpl
        cols = [_column(tmpl[c], ids, stamps, rint[c].tolist(), keep[c]) for c in (HR, RR, SPO2)]
        cols.append(_bp_column(tmpl[BP], ids, stamps, rint[SBP], rint[DBP], keep[BP]))
        cols.append(_column(tmpl[TEMP], ids, stamps, temp.tolist(), keep[TEMP]))
        labs = [""] * n
        for j, i in enumerate(np.flatnonzero(lab_due).tolist()):
            k, na, glu, ica = (lab_values[c][j] for c in _LABS)
            values = (max(2.0, k), na, max(40.0, glu), ica)
            labs[i] = "".join(
                tmpl[c] % (ids[i], stamps[i], v) for c, v in zip(_LABS, values, strict=True)
            )
        cols.append(labs)
        n_obs = sum(int(keep[c].sum()) for c in (HR, RR, SPO2, BP, TEMP)) + 4 * n_labs
        text = "".join(chain.from_iterable(zip(*cols, strict=True)))
        return text, n_obs, n_obs + int(keep[BP].sum())


def _column(
    template: str, ids: list[int], stamps: list[str], values: list[Any], keep: np.ndarray
) -> list[str]:
    return [
        template % (m, ts, v) if k else ""
        for m, ts, v, k in zip(ids, stamps, values, keep.tolist(), strict=True)
    ]


def _bp_column(
    template: str,
    ids: list[int],
    stamps: list[str],
    systolic: np.ndarray,
    diastolic: np.ndarray,
    keep: np.ndarray,
) -> list[str]:
    rows = zip(ids, stamps, systolic.tolist(), diastolic.tolist(), keep.tolist(), strict=True)
    return [template % (m, ts, sv, dv) if k else "" for m, ts, sv, dv, k in rows]
