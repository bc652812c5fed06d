"""Reading over HTTP: search and read of the hot store, the CapabilityStatement, the OpenAPI
document, health and the OperationOutcome of unknown routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from medsleep.store.models import Reading
from tests.helpers import ndjson_of, observation
from tests.http_service import FHIR_JSON, NDJSON, Service, outcome_issues, service

BP = {
    "resourceType": "Observation",
    "id": "bp-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
    "subject": {"reference": "Patient/p2"},
    "effectiveDateTime": "2026-01-06T08:00:00Z",
    "component": [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": "mm[Hg]", "code": "mm[Hg]"},
        }
        for code, value in (("8480-6", 120), ("8462-4", 80))
    ],
}
DATA = [
    observation("hr-0", when="2026-01-05T00:00:00Z"),
    observation("hr-1", when="2026-01-05T10:00:00Z"),
    observation("hr-2", when="2026-01-05T23:59:59Z"),
    observation("hr-3", when="2026-01-06T00:00:00Z"),
    observation("rr-1", code="9279-1", value=16, when="2026-01-05T10:00:00Z"),
    observation("hr-p2", patient="p2", when="2026-01-05T10:00:00Z"),
    BP,
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service with DATA in it, shared by the read-only tests of this module."""
    base = tmp_path_factory.mktemp("search")
    with service(base, f"sqlite:///{base / 'medsleep.db'}") as svc:
        with svc.client() as client:
            response = client.post("/fhir/$ingest", content=ndjson_of(DATA), headers=NDJSON)
        assert response.json()["stored"] == len(DATA)
        yield svc


def ids(svc: Service, **params: Any) -> list[str]:
    with svc.client("reader") as client:
        response = client.get("/fhir/Observation", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["resourceType"], body["type"]) == ("Bundle", "searchset")
    return [entry["resource"]["id"] for entry in body.get("entry", [])]


def test_search_by_patient_oldest_first(loaded: Service) -> None:
    assert ids(loaded, patient="p1") == ["hr-0", "hr-1", "rr-1", "hr-2", "hr-3"]
    assert ids(loaded, patient="Patient/p2") == ["hr-p2", "bp-1"]
    assert ids(loaded, subject="Patient/p2") == ids(loaded, patient="p2")
    assert ids(loaded, patient="nobody") == []


def test_search_by_code_forms(loaded: Service) -> None:
    assert ids(loaded, code="9279-1") == ["rr-1"]
    assert ids(loaded, code="http://loinc.org|9279-1") == ["rr-1"]
    assert ids(loaded, code="http://snomed.info/sct|9279-1") == []
    assert ids(loaded, code="9279-1,8480-6") == ["rr-1", "bp-1"]  # a component code matches
    assert ids(loaded, patient="p2", code="8867-4") == ["hr-p2"]


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["2026-01-05"], ["hr-0", "hr-1", "rr-1", "hr-2"]),
        (["ge2026-01-05T10:00:00Z", "lt2026-01-06"], ["hr-1", "rr-1", "hr-2"]),
        (["gt2026-01-05"], ["hr-3"]),
        (["le2026-01-05T00:00:00Z"], ["hr-0"]),
        (["2026-01-05T11:00:00+01:00"], ["hr-1", "rr-1"]),
        (["ne2026-01-05"], ["hr-3"]),
        (["2026"], ["hr-0", "hr-1", "rr-1", "hr-2", "hr-3"]),
    ],
)
def test_search_by_date(loaded: Service, dates: list[str], expected: list[str]) -> None:
    assert ids(loaded, patient="p1", date=dates) == expected


def test_search_pages_with_next_links(loaded: Service) -> None:
    seen: list[str] = []
    with loaded.client("reader") as client:
        url: str | None = f"{loaded.base}/fhir/Observation?patient=p1&_count=2"
        for _ in range(10):
            if url is None:
                break
            body = client.get(url).json()
            seen += [e["resource"]["id"] for e in body.get("entry", [])]
            url = next((ln["url"] for ln in body["link"] if ln["relation"] == "next"), None)
    assert seen == ["hr-0", "hr-1", "rr-1", "hr-2", "hr-3"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"patinet": "p1"}, "unsupported search parameter"),
        ({"date": "yesterday"}, "not a FHIR date"),
        ({"date": "ap2026-01-05"}, "not supported"),
        ({"_count": "-1"}, "_count must be"),
        ({"patient": "Group/g1"}, "only Patient references"),
    ],
)
def test_bad_searches_are_400(loaded: Service, params: dict[str, str], words: str) -> None:
    with loaded.client("reader") as client:
        response = client.get("/fhir/Observation", params=params)
    assert response.status_code == 400
    assert words in outcome_issues(response)[0]["diagnostics"]


def test_search_and_read_need_a_token(loaded: Service) -> None:
    with loaded.client(None) as client:
        for path in ("/fhir/Observation?patient=p1", "/fhir/Observation/hr-1"):
            response = client.get(path)
            assert response.status_code == 401
            assert outcome_issues(response)[0]["code"] == "login"


def test_read_and_vread(loaded: Service) -> None:
    with loaded.client("reader") as client:
        current = client.get("/fhir/Observation/bp-1")
        missing = client.get("/fhir/Observation/nope")
        wrong_version = client.get("/fhir/Observation/bp-1/_history/999")
    assert current.status_code == 200
    assert current.json()["component"][0]["valueQuantity"]["value"] == 120
    assert missing.status_code == 404
    assert outcome_issues(missing)[0]["code"] == "not-found"
    assert wrong_version.status_code == 404


def test_versions_retraction_and_archived_readings(tmp_path: Path, sqlite_url: str) -> None:
    with service(tmp_path, sqlite_url) as svc, svc.client() as client:
        for value in (70, 75):
            client.put("/fhir/Observation/v", json=observation("v", value=value), headers=FHIR_JSON)
        assert client.get("/fhir/Observation/v").json()["valueQuantity"]["value"] == 75
        first = client.get("/fhir/Observation/v/_history/1")
        assert first.json()["valueQuantity"]["value"] == 70
        retraction = observation("v", status="entered-in-error")
        client.put("/fhir/Observation/v", json=retraction, headers=FHIR_JSON)
        gone = client.get("/fhir/Observation/v")
        assert gone.status_code == 410
        assert ids(svc, patient="p1") == []
        client.put("/fhir/Observation/w", json=observation("w"), headers=FHIR_JSON)
        with svc.engine.begin() as conn:  # what consolidation does to a collapsed reading
            table = Reading.__table__  # type: ignore[attr-defined]
            conn.execute(table.delete().where(table.c.resource_key == "Observation/w"))
        archived = client.get("/fhir/Observation/w")
        assert archived.status_code == 404
        assert "archive" in outcome_issues(archived)[0]["diagnostics"]
        client.put("/fhir/Observation/kept", json=observation("kept"), headers=FHIR_JSON)
        with svc.engine.begin() as conn:  # what consolidation does to a reading that matters
            key = table.c.resource_key == "Observation/kept"
            conn.execute(update(table).where(key).values(state="retained"))
        assert ids(svc, patient="p1") == ["kept"]


def test_capability_statement_validates(loaded: Service) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    with loaded.client(None) as client:  # no token: metadata is public
        response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(response.json())
    resource = statement.rest[0].resource[0]
    assert resource.type == "Observation"
    assert {p.name for p in resource.searchParam} >= {"patient", "code", "date"}
    assert {i.code for i in statement.rest[0].interaction} == {"batch", "transaction"}


def test_openapi_document_is_served(loaded: Service) -> None:
    with loaded.client(None) as client:
        document = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert document["openapi"].startswith("3.")
    assert {"/fhir/Observation", "/fhir", "/fhir/$ingest", "/fhir/metadata", "/healthz"} <= set(
        document["paths"]
    )
    ingest = document["paths"]["/fhir/$ingest"]["post"]
    assert "application/fhir+ndjson" in ingest["requestBody"]["content"]
    assert ingest["security"] == [{"HTTPBearer": []}]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert docs.status_code == 200


def test_health_and_unknown_routes(loaded: Service) -> None:
    with loaded.client(None) as client:
        health = client.get("/healthz")
        unknown = client.get("/fhir/Patient")
        wrong_method = client.delete("/fhir/Observation")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert unknown.status_code == 404
    assert outcome_issues(unknown)[0]["code"] == "not-found"
    assert wrong_method.status_code == 405
    assert outcome_issues(wrong_method)[0]["code"] == "not-supported"
