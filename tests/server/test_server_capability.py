"""Every claim of the CapabilityStatement, checked against the running server: each
interaction it lists works, each it leaves out is refused, each search parameter is accepted,
and its versioning, updateCreate, conditional and format claims hold."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import observation
from tests.http_service import FHIR_JSON, Service

# A value for each search parameter the statement may name; a new parameter without one
# fails the test, so the statement cannot grow a claim nobody checked.
SEARCH_EXAMPLES = {
    "patient": "p1",
    "subject": "Patient/p1",
    "code": "http://loinc.org|8867-4",
    "date": "ge2026-01-05",
    "_id": "claim-1",
    "status": "final",
    "category": "vital-signs",
    "identifier": "urn:ward7|dev-1",
    "_count": "1",
    "_sort": "-date",
    "_summary": "count",
    "_elements": "status",
}


def statement(svc: Service) -> dict[str, Any]:
    with svc.client(None) as client:
        found: dict[str, Any] = client.get("/fhir/metadata").json()
    return found


def interaction(client: httpx.Client, code: str) -> httpx.Response:
    """Perform one Observation interaction of the statement on ``claim-1``."""
    body = observation("claim-1")
    requests = {
        "create": lambda: client.post("/fhir/Observation", json=body, headers=FHIR_JSON),
        "update": lambda: client.put("/fhir/Observation/claim-1", json=body, headers=FHIR_JSON),
        "read": lambda: client.get("/fhir/Observation/claim-1"),
        "vread": lambda: client.get("/fhir/Observation/claim-1/_history/1"),
        "search-type": lambda: client.get("/fhir/Observation"),
        "delete": lambda: client.delete("/fhir/Observation/claim-1"),
        "history-instance": lambda: client.get("/fhir/Observation/claim-1/_history"),
        "history-type": lambda: client.get("/fhir/Observation/_history"),
        "patch": lambda: client.patch("/fhir/Observation/claim-1", json=[]),
    }
    response: httpx.Response = requests[code]()
    return response


def test_each_claimed_interaction_works_and_the_others_are_refused(svc: Service) -> None:
    [resource] = statement(svc)["rest"][0]["resource"]
    claimed = [i["code"] for i in resource["interaction"]]
    order = ["update", "create", "read", "vread", "search-type", "delete"]
    assert sorted(claimed) == sorted(order)
    with svc.client() as client:
        for code in order:
            response = interaction(client, code)
            assert response.is_success, (code, response.status_code, response.text)
        for code in ("history-instance", "history-type", "patch"):
            assert interaction(client, code).status_code in (404, 405), code


def test_each_search_parameter_is_accepted(svc: Service) -> None:
    [resource] = statement(svc)["rest"][0]["resource"]
    with svc.client() as client:
        client.put("/fhir/Observation/claim-1", json=observation("claim-1"), headers=FHIR_JSON)
        for param in resource["searchParam"]:
            value = SEARCH_EXAMPLES[param["name"]]
            response = client.get("/fhir/Observation", params={param["name"]: value})
            assert response.status_code == 200, (param["name"], response.text)
            assert "total" in response.json()


def test_versioning_update_create_and_conditional_claims(svc: Service) -> None:
    [resource] = statement(svc)["rest"][0]["resource"]
    assert resource["versioning"] == "versioned-update"
    assert resource["updateCreate"] is True
    assert resource["conditionalCreate"] is True
    assert resource["conditionalDelete"] == "not-supported"
    assert resource["conditionalUpdate"] is False
    with svc.client() as client:
        made = client.put("/fhir/Observation/new-id", json=observation("new-id"), headers=FHIR_JSON)
        assert made.status_code == 201  # updateCreate
        read = client.get("/fhir/Observation/new-id")
        assert read.headers["etag"] == f'W/"{read.json()["meta"]["versionId"]}"'  # versioned
        stale = client.put(
            "/fhir/Observation/new-id",
            json=observation("new-id"),
            headers={**FHIR_JSON, "If-Match": 'W/"99"'},
        )
        assert stale.status_code == 412  # versioned-update: If-Match is checked
        body = observation(None, identifier=[{"system": "urn:x", "value": "1"}])
        condition = {**FHIR_JSON, "If-None-Exist": "identifier=urn:x|1"}
        statuses = [
            client.post("/fhir/Observation", json=body, headers=condition).status_code
            for _ in range(2)
        ]
        assert statuses == [201, 200]  # conditionalCreate
        assert client.delete("/fhir/Observation", params={"_id": "new-id"}).status_code == 405
        assert client.put("/fhir/Observation", json=body, headers=FHIR_JSON).status_code == 405


def test_format_claim(svc: Service) -> None:
    claimed = statement(svc)["format"]
    assert all("xml" not in f for f in claimed)
    with svc.client() as client:
        assert client.get("/fhir/metadata", params={"_format": "xml"}).status_code == 406
        for name in claimed:
            assert client.get("/fhir/metadata", params={"_format": name}).status_code == 200
