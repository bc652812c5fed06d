"""Patient resources in the input: demographics stored at ingest (NDJSON and Bundles, urn:uuid
entries too), counted among the skipped with their kind so counts balance; bad ones are
quarantined with the reason; the digest rows and the patient header show them, falling back
to the id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from medsleep.fhir.demographics import PATIENT_STORED, demographics
from medsleep.fhir.parse import ResourceRejected
from medsleep.ingest import ingest_paths
from medsleep.read.digest import night_digest
from medsleep.read.patients import patient_header
from medsleep.store.tables import PATIENT
from tests.helpers import observation, quarantined, readings, write_ndjson
from tests.read.test_read_digest import NIGHT, POLICY, UTC

MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}


def patient(pid: str | None, **extra: object) -> dict[str, object]:
    out: dict[str, object] = {"resourceType": "Patient", **extra}
    if pid is not None:
        out["id"] = pid
    return out


def stored(engine: Engine) -> dict[str, tuple[str, str, str, str]]:
    p = PATIENT.c
    with engine.connect() as conn:
        rows = conn.execute(select(p.patient, p.name, p.mrn, p.birth_date, p.resource_version))
        return {r[0]: tuple(r[1:]) for r in rows}


def test_patients_in_ndjson_are_stored_and_counted(engine: Engine, tmp_path: Path) -> None:
    ana = patient("p1", birthDate="1950-03-01", meta={"versionId": "2"},
                  name=[{"use": "nickname", "text": "Annie"},
                        {"use": "official", "given": ["Ana", "B."], "family": "Muster"}],
                  identifier=[{"system": "urn:ins", "value": "INS-9"},
                              {"type": MR, "value": "12345"}])  # fmt: skip
    bad = patient("p 2", birthDate="1950")  # a space is not allowed in a FHIR id
    late = patient("p3", birthDate="01.02.1960")
    obs = observation("o1", patient="p1", when="2026-01-05T23:00:00Z")
    path = write_ndjson(tmp_path / "in.ndjson", [ana, bad, obs, late, patient("p4")])
    report = ingest_paths(engine, [str(path)])
    assert report.balanced
    assert (report.resources, report.stored, report.skipped, report.quarantined) == (5, 1, 2, 2)
    assert report.skipped_reasons == {PATIENT_STORED: 2}
    assert stored(engine) == {"p1": ("Ana B. Muster", "12345", "1950-03-01", "2"),
                              "p4": ("", "", "", "")}  # fmt: skip
    errors = sorted(q["error"] for q in quarantined(engine))
    assert errors[0].startswith("Patient.birthDate is not a FHIR date")
    assert errors[1] == "Patient.id is missing or not a FHIR id"
    assert len(readings(engine)) == 1


def test_patients_in_bundles_are_stored_with_their_urn_uuid(engine: Engine, tmp_path: Path) -> None:
    uuid = "6f1c1a7e-0d5b-4b7a-9b51-2f0e2c1d9a10"
    obs = observation("o1", when="2026-01-05T23:00:00Z")
    obs["subject"] = {"reference": f"urn:uuid:{uuid}"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:{uuid}",
         "resource": patient(None, name=[{"text": "Bo Beispiel"}], birthDate="1961-07")},
        {"resource": obs},
        {"resource": {"resourceType": "Encounter", "id": "e1"}},
    ]}  # fmt: skip
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    report = ingest_paths(engine, [str(path)])
    assert report.balanced
    assert report.skipped_reasons == {PATIENT_STORED: 1, "not an Observation (Encounter)": 1}
    assert stored(engine) == {uuid: ("Bo Beispiel", "", "1961-07", "")}
    assert [r["patient"] for r in readings(engine)] == [uuid]  # the same id as the header


def test_a_newer_version_replaces_an_older_one_never_the_reverse(
    engine: Engine, tmp_path: Path
) -> None:
    v2 = patient("p1", meta={"versionId": "2"}, name=[{"text": "New Name"}])
    v1 = patient("p1", meta={"versionId": "1"}, name=[{"text": "Old Name"}])
    ingest_paths(engine, [str(write_ndjson(tmp_path / "a.ndjson", [v2]))])
    ingest_paths(engine, [str(write_ndjson(tmp_path / "b.ndjson", [v1]))])
    assert stored(engine)["p1"][0] == "New Name"


def test_headers_show_in_the_digest_and_fall_back_to_the_id(engine: Engine, tmp_path: Path) -> None:
    hr = [
        observation(
            f"{p}-h{i}",
            code="8867-4",
            unit="/min",
            patient=p,
            value=72.0,
            when=f"2026-01-05T23:{i:02d}:00Z",
        )  # fmt: skip
        for p in ("p1", "p2")
        for i in range(3)
    ]
    ana = patient("p1", name=[{"text": "Ana Muster"}], birthDate="1950-03-01",
                  identifier=[{"type": MR, "value": "12345"}])  # fmt: skip
    ingest_paths(engine, [str(write_ndjson(tmp_path / "n.ndjson", [ana, *hr]))])
    rows = {r.patient: r for r in night_digest(engine, POLICY, UTC, *NIGHT).rows}
    header = rows["p1"].header
    assert header is not None
    assert header.label == "Ana Muster · MRN 12345 · born 1950-03-01 · id p1"
    assert rows["p2"].header is None
    with engine.connect() as conn:
        assert patient_header(conn, "p2").label == "p2"


@settings(max_examples=200, deadline=None)
@given(resource=st.dictionaries(
    st.sampled_from(["id", "name", "identifier", "birthDate", "meta"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["text", "given", "family", "use", "type",
                                                    "coding", "code", "value", "versionId"]),
                                   inner, max_size=4), max_leaves=12)))  # fmt: skip
def test_any_patient_resource_is_read_or_rejected_never_a_crash(
    resource: dict[str, object],
) -> None:
    try:
        row = demographics({"resourceType": "Patient", **resource})
    except ResourceRejected:
        return
    assert len(row) == 5
    assert all(isinstance(part, str) for part in row)
    assert row[0] == resource["id"]


@pytest.mark.parametrize("birth", ["1950", "1950-03", "1950-03-01", ""])
def test_birth_dates_as_fhir_sends_them(birth: str) -> None:
    assert demographics(patient("p1", birthDate=birth))[3] == birth


def test_a_patient_entry_that_is_not_valid_json_is_quarantined_and_the_bundle_goes_on(
    engine: Engine, tmp_path: Path
) -> None:
    obs = json.dumps(observation("o1", when="2026-01-05T23:00:00Z")).encode()
    bad = b'{"resourceType":"Patient","id":"p1","name":[{"text":"Bad \xff name"}]}'
    path = tmp_path / "bundle.json"
    path.write_bytes(b'{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
                     + bad + b'},{"resource":' + obs + b"}]}")  # fmt: skip
    report = ingest_paths(engine, [str(path)])
    assert report.balanced
    assert (report.stored, report.quarantined) == (1, 1)
    assert quarantined(engine)[0]["error"].startswith("invalid JSON")
    assert stored(engine) == {}
