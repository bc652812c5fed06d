"""The synthetic ICU generator: deterministic, valid FHIR, honest labels."""

from __future__ import annotations

import csv
import gzip
import re
import statistics
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from hypothesis import given, settings
from hypothesis import strategies as st

from medsleep.synth import (
    DEFAULT_START,
    GenerationSummary,
    generate,
    iter_ndjson,
    iter_observations,
    patient_id,
    uses_fahrenheit,
)

HR, RR, SPO2, TEMP, BP, SBP, DBP = (
    "8867-4",
    "9279-1",
    "59408-5",
    "8310-5",
    "85354-9",
    "8480-6",
    "8462-4",
)
LABS = ("2823-3", "2951-2", "2345-7", "1994-3")
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample"


@dataclass(frozen=True)
class Value:
    patient: str
    code: str
    time: datetime
    value: float
    unit: str


@dataclass(frozen=True)
class Window:
    event: str
    patient: str
    code: str
    start: datetime
    end: datetime

    def holds(self, v: Value) -> bool:
        return v.patient == self.patient and self.start <= v.time < self.end


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _lines(out: Path) -> list[bytes]:
    plain = out / "observations.ndjson"
    if plain.exists():
        return plain.read_bytes().splitlines()
    return gzip.decompress((out / "observations.ndjson.gz").read_bytes()).splitlines()


def _values(lines: list[bytes]) -> list[Value]:
    """Flatten Observations into one value per code, BP components included."""
    values = []
    for line in lines:
        obs = orjson.loads(line)
        patient = obs["subject"]["reference"].removeprefix("Patient/")
        when = _time(obs["effectiveDateTime"])
        parts = obs.get("component", [obs])
        for part in parts:
            q = part["valueQuantity"]
            values.append(
                Value(patient, part["code"]["coding"][0]["code"], when, q["value"], q["code"])
            )
    return values


def _windows(path: Path) -> list[Window]:
    with path.open(newline="") as f:
        return [
            Window(r["event"], r["patient"], r["code"], _time(r["start"]), _time(r["end"]))
            for r in csv.DictReader(f)
        ]


def _celsius(v: Value) -> float:
    return (v.value - 32) / 1.8 if v.unit == "[degF]" else v.value


@dataclass(frozen=True)
class Run:
    out: Path
    summary: GenerationSummary
    lines: list[bytes]
    values: list[Value]
    labels: list[Window]
    artifacts: list[Window]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, patients=12, days=1, seed=11)
    lines = _lines(out)
    return Run(
        out,
        summary,
        lines,
        _values(lines),
        _windows(out / "labels.csv"),
        _windows(out / "artifacts.csv"),
    )


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize("compress", [False, True])
def test_same_seed_gives_byte_identical_files(tmp_path: Path, compress: bool) -> None:
    generate(tmp_path / "a", patients=2, days=0.3, seed=5, compress=compress)
    generate(tmp_path / "b", patients=2, days=0.3, seed=5, compress=compress)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_different_seed_gives_different_values(tmp_path: Path) -> None:
    generate(tmp_path / "a", patients=2, days=0.3, seed=5)
    generate(tmp_path / "b", patients=2, days=0.3, seed=6)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a["observations.ndjson"] != b["observations.ndjson"]


def test_summary_counts_what_was_written(run: Run) -> None:
    s = run.summary
    assert s.patients == 12
    assert s.observations == len(run.lines)
    assert s.readings == len(run.values)
    assert s.events == len({(w.patient, w.event, w.start) for w in run.labels})
    assert s.artifacts == len(run.artifacts)
    assert sorted(p.name for p in s.files) == sorted(p.name for p in run.out.iterdir())


def test_every_line_is_json_and_a_sample_validates_as_fhir_observation(run: Run) -> None:
    docs = [orjson.loads(line) for line in run.lines]
    first_of_each_code = {
        d["code"]["coding"][0]["code"]: i for i, d in reversed(list(enumerate(docs)))
    }
    picked = sorted(set(range(0, len(docs), len(docs) // 300)) | set(first_of_each_code.values()))
    assert len(picked) >= 300
    for i in picked:
        obs = Observation.model_validate(docs[i])
        assert obs.status == "final"
        assert isinstance(obs.effectiveDateTime, datetime)
        assert obs.effectiveDateTime.tzinfo is not None
    assert set(first_of_each_code) == {HR, RR, SPO2, TEMP, BP, *LABS}


def test_observations_carry_ids_categories_and_subjects(run: Run) -> None:
    patients = [
        orjson.loads(line) for line in (run.out / "patients.ndjson").read_bytes().splitlines()
    ]
    known = {p["id"] for p in patients}
    ids = set()
    for line in run.lines:
        obs = orjson.loads(line)
        code = obs["code"]["coding"][0]
        assert code["system"] == "http://loinc.org"
        assert code["display"]
        assert obs["meta"] == {"versionId": "1"}
        assert obs["effectiveDateTime"].endswith("Z")
        category = obs["category"][0]["coding"][0]["code"]
        assert category == ("laboratory" if code["code"] in LABS else "vital-signs")
        patient = obs["subject"]["reference"].removeprefix("Patient/")
        assert patient in known
        assert re.fullmatch(rf"{patient}-{re.escape(code['code'])}-\d+", obs["id"])
        ids.add(obs["id"])
    assert len(ids) == len(run.lines)


def test_patients_are_valid_fhir_with_synthetic_names(run: Run) -> None:
    lines = (run.out / "patients.ndjson").read_bytes().splitlines()
    patients = [Patient.model_validate(orjson.loads(line)) for line in lines]
    assert [p.id for p in patients] == [patient_id(n) for n in range(1, 13)]
    assert all(p.name and p.name[0].family and p.name[0].given for p in patients)


def test_labels_lie_inside_the_generated_range(run: Run) -> None:
    end = DEFAULT_START + timedelta(days=1)
    assert run.labels
    for w in run.labels + run.artifacts:
        assert DEFAULT_START <= w.start < w.end <= end


def test_every_event_kind_occurs_one_to_three_times_a_patient_day(run: Run) -> None:
    events = {(w.patient, w.event, w.start) for w in run.labels}
    assert {e for _, e, _ in events} == {"tachycardia", "desaturation", "hypotension", "fever"}
    per_patient = Counter(p for p, _, _ in events)
    assert all(1 <= per_patient[patient_id(n)] <= 3 for n in range(1, 13))
    codes: dict[str, set[str]] = defaultdict(set)
    for w in run.labels:
        codes[w.event].add(w.code)
    assert codes == {
        "tachycardia": {HR},
        "desaturation": {SPO2, HR},
        "hypotension": {SBP},
        "fever": {TEMP},
    }


def test_labelled_readings_are_abnormal(run: Run) -> None:
    by_series: dict[tuple[str, str], list[Value]] = defaultdict(list)
    for v in run.values:
        by_series[v.patient, v.code].append(v)
    for w in run.labels:
        series = by_series[w.patient, w.code]
        inside = [v for v in series if w.holds(v)]
        assert inside, w
        if w.event == "tachycardia":
            assert all(v.value > 110 for v in inside), w
        elif w.event == "desaturation" and w.code == SPO2:
            assert all(v.value <= 91 for v in inside), w
        elif w.event == "desaturation":
            usual = statistics.median(v.value for v in series)
            assert statistics.mean(v.value for v in inside) > usual + 10, w
        elif w.event == "hypotension":
            assert all(v.value < 90 for v in inside), w
        else:
            assert all(_celsius(v) >= 38.5 - 0.06 for v in inside), w  # one decimal in [degF]


def test_artifacts_are_implausible_and_never_labelled(run: Run) -> None:
    assert {w.event for w in run.artifacts} == {"artifact-zero", "artifact-spike", "artifact-run"}
    index = {(v.patient, v.code, v.time): v for v in run.values}
    for a in run.artifacts:
        minutes = int((a.end - a.start) / timedelta(minutes=1))
        assert (minutes > 1) == (a.event == "artifact-run")
        for m in range(minutes):
            value = index[a.patient, a.code, a.start + timedelta(minutes=m)].value
            assert value >= 250 if a.event == "artifact-spike" else value == 0
        clash = [
            w for w in run.labels if w.patient == a.patient and a.start < w.end and w.start < a.end
        ]
        assert not clash


def test_one_reading_a_minute_when_nothing_drops_out(tmp_path: Path) -> None:
    generate(tmp_path, patients=2, days=0.5, seed=3, dropout_rate=0.0)
    counts = Counter((v.patient, v.code) for v in _values(_lines(tmp_path)))
    for patient in ("icu-0001", "icu-0002"):
        for code in (HR, RR, SPO2, SBP, DBP):
            assert counts[patient, code] == 720
        assert counts[patient, TEMP] == 720 // 15
        assert all(counts[patient, lab] == 2 for lab in LABS)


def test_dropouts_happen_at_the_configured_rate(tmp_path: Path) -> None:
    generate(tmp_path, patients=4, days=1, seed=3, dropout_rate=0.1)
    counts = Counter((v.patient, v.code) for v in _values(_lines(tmp_path)))
    for code in (HR, RR, SPO2, SBP):
        present = sum(counts[patient_id(n), code] for n in range(1, 5))
        assert 0.08 < 1 - present / (4 * 1440) < 0.12


def test_some_patients_report_temperature_in_fahrenheit(run: Run) -> None:
    units = {v.patient: v.unit for v in run.values if v.code == TEMP}
    fahrenheit = {p for p, unit in units.items() if unit == "[degF]"}
    assert fahrenheit == {"icu-0003"} == {patient_id(n) for n in range(1, 13) if uses_fahrenheit(n)}
    assert set(units.values()) == {"[degF]", "Cel"}
    for v in run.values:
        if v.code == TEMP:
            assert 35.0 < _celsius(v) < 41.0


def test_nights_are_calmer_than_afternoons(run: Run) -> None:
    def mean_hr(hours: range) -> float:
        return statistics.mean(
            v.value
            for v in run.values
            if v.code == HR and v.time.hour in hours and 30 < v.value < 200
        )

    assert mean_hr(range(2, 6)) + 4 < mean_hr(range(14, 18))


def test_compressed_output_holds_the_same_lines_and_replaces_the_plain_file(tmp_path: Path) -> None:
    generate(tmp_path / "plain", patients=2, days=0.2, seed=9)
    generate(tmp_path / "both", patients=2, days=0.2, seed=9)
    summary = generate(tmp_path / "both", patients=2, days=0.2, seed=9, compress=True)
    assert summary.files[0].name == "observations.ndjson.gz"
    assert not (tmp_path / "both" / "observations.ndjson").exists()
    plain = (tmp_path / "plain" / "observations.ndjson").read_bytes()
    assert gzip.decompress(summary.files[0].read_bytes()) == plain
    assert not list((tmp_path / "both").glob(".*partial"))


def test_progress_is_told_every_observation(tmp_path: Path) -> None:
    seen: list[int] = []
    summary = generate(tmp_path, patients=2, days=1.5, seed=1, progress=seen.append)
    assert len(seen) == 4  # two UTC days for each of two patients
    assert sum(seen) == summary.observations


def test_iterators_yield_what_generate_writes(tmp_path: Path) -> None:
    generate(tmp_path, patients=2, days=0.2, seed=4)
    text = (tmp_path / "observations.ndjson").read_text()
    assert "".join(iter_ndjson(2, 0.2, 4)) == text
    assert list(iter_observations(2, 0.2, 4)) == [orjson.loads(line) for line in text.splitlines()]


def test_start_may_be_any_minute_and_days_may_cross_midnight(tmp_path: Path) -> None:
    start = datetime(2025, 3, 30, 22, 30, tzinfo=UTC)
    generate(tmp_path, patients=1, days=0.125, seed=2, start=start, dropout_rate=0.0)
    times = sorted({v.time for v in _values(_lines(tmp_path))})
    assert times[0] == start
    assert times[-1] == start + timedelta(minutes=179)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patients": 0, "days": 1.0},
        {"patients": 1, "days": 0.0},
        {"patients": 1, "days": 1.0, "start": datetime(2026, 1, 1)},
        {"patients": 1, "days": 1.0, "start": datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)},
        {"patients": 1, "days": 1.0, "dropout_rate": 1.0},
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must|need"):
        generate(tmp_path, seed=1, **kwargs)


def test_checked_in_sample_is_what_the_generator_makes(tmp_path: Path) -> None:
    generate(tmp_path, patients=3, days=1, seed=7, compress=True)
    assert _lines(SAMPLE) == _lines(tmp_path)  # compare text: gzip bytes depend on zlib
    for name in ("patients.ndjson", "labels.csv", "artifacts.csv"):
        assert (SAMPLE / name).read_bytes() == (tmp_path / name).read_bytes()
    assert (SAMPLE / "observations.ndjson.gz").stat().st_size < 2_000_000


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**63), days=st.floats(0.02, 1.6), patients=st.integers(1, 3))
def test_any_run_is_self_consistent(seed: int, days: float, patients: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        summary = generate(out, patients=patients, days=days, seed=seed)
        lines = _lines(out)
        windows = _windows(out / "labels.csv") + _windows(out / "artifacts.csv")
    end = DEFAULT_START + timedelta(minutes=round(days * 1440))
    assert summary.observations == len(lines)
    assert all(DEFAULT_START <= w.start < w.end <= end for w in windows)
    times = {
        _time(orjson.loads(line)["effectiveDateTime"])
        for line in lines[:: max(1, len(lines) // 50)]
    }
    assert all(DEFAULT_START <= t < end for t in times)
