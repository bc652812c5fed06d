"""Every bundled public FHIR file ingests with balanced counts and the values FHIR states."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from medsleep.fhir.demographics import PATIENT_STORED
from medsleep.ingest import ingest_paths
from medsleep.read.patients import patient_headers
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SPEC_EXAMPLES, SYNTHEA
from tests.helpers import readings

ALL_FILES = sorted(SPEC_EXAMPLES.glob("*.json")) + sorted(SYNTHEA.glob("*.json"))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name[:40])
def test_every_public_file_balances(sqlite_engine: Engine, path: Path) -> None:
    report = ingest_paths(sqlite_engine, [str(path)])
    assert report.resources >= 1
    assert report.balanced, report.as_json()
    assert report.quarantined == 0, report.as_json()
    assert report.readings == len(readings(sqlite_engine))


def _one(engine: Engine, name: str) -> list[dict[str, object]]:
    ingest_paths(engine, [str(SPEC_EXAMPLES / name)])
    return readings(engine)


def test_heart_rate_example_is_44_per_minute(engine: Engine) -> None:
    (hr,) = _one(engine, "observation-example-heart-rate.json")
    assert (hr["code"], hr["value"], hr["unit"], hr["patient"]) == (
        "8867-4",
        44.0,
        "/min",
        "example",
    )
    assert hr["resource_key"] == "Observation/heart-rate"
    assert hr["effective_ms"] == parse_iso_ms("1999-07-02T00:00:00+00:00")  # date only


def test_weight_in_pounds_is_stored_in_kilograms(engine: Engine) -> None:
    (weight,) = _one(engine, "observation-example.json")
    assert weight["unit"] == "kg"
    assert weight["value"] == pytest.approx(83.91, abs=0.005)
    assert (weight["orig_value"], weight["orig_unit"]) == (185.0, "[lb_av]")


def test_blood_pressure_panel_gives_two_traced_readings(engine: Engine) -> None:
    rows = _one(engine, "observation-example-bloodpressure.json")
    assert {(r["code"], r["value"]) for r in rows} == {("8480-6", 107.0), ("8462-4", 60.0)}
    assert {r["resource_key"] for r in rows} == {"Observation/blood-pressure"}
    assert {r["part"] for r in rows} == {0, 1}


def test_blood_pressure_with_data_absent_component_keeps_the_other(engine: Engine) -> None:
    rows = _one(engine, "observation-example-bloodpressure-dar.json")
    assert [(r["code"], r["value"]) for r in rows] == [("8480-6", 107.0)]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("observation-example-bloodpressure-cancel.json", "cancelled"),
        ("observation-example-f202-temperature.json", "entered-in-error"),
        ("observation-example-sample-data.json", "sampled data (waveform)"),
        ("observation-example-vitals-panel.json", "panel (hasMember only)"),
        ("observation-example-eye-color.json", "non-numeric value"),
    ],
)
def test_skipped_with_reason(sqlite_engine: Engine, name: str, reason: str) -> None:
    report = ingest_paths(sqlite_engine, [str(SPEC_EXAMPLES / name)])
    assert (report.skipped, report.stored, report.readings) == (1, 0, 0)
    assert report.skipped_reasons == {reason: 1}


def test_temperature_in_fahrenheit_converted(sqlite_engine: Engine) -> None:
    (temp,) = _one(sqlite_engine, "observation-example-body-temperature.json")
    assert (temp["code"], temp["unit"]) == ("8310-5", "Cel")
    assert temp["value"] == pytest.approx(36.5)


def test_synthea_bundles_resolve_urn_uuid_patients(engine: Engine) -> None:
    report = ingest_paths(engine, [str(SYNTHEA)])
    assert report.balanced
    patients = {r["patient"] for r in readings(engine)}
    assert patients == {
        "9acbf6dd-e2b1-42cd-9a8b-259b519491d6",
        "9efca32a-04f9-438a-990c-a287e8b62aac",
    }
    bp = [r for r in readings(engine, code="8480-6") if r["patient"].startswith("9acbf6dd")]
    assert len(bp) >= 130  # the patient with near-daily BP in 2008-2009
    non_observations = sum(
        n for reason, n in report.skipped_reasons.items() if reason.startswith("not an Observation")
    )
    assert non_observations > 0
    # Synthea's two Patients: their demographics are kept for the dashboard's headers.
    assert report.skipped_reasons[PATIENT_STORED] == 2
    with engine.connect() as conn:
        headers = patient_headers(conn, {r["patient"] for r in readings(engine)})
    assert len(headers) == 2
    assert all(h.name and h.birth_date and h.mrn for h in headers.values())
