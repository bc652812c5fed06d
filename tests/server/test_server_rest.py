"""The FHIR R4 RESTful interactions beyond create and search, as the spec words them: update
(update-or-create, If-Match), delete (a retraction), conditional create, and what a searchset
carries (total, _count=0, _summary=count, _sort, _id, status, category, identifier,
_elements); XML is refused with 406; urn:uuid subjects read back resolved. Real server on
127.0.0.1, real HTTP, SQLite and PostgreSQL where the SQL differs by dialect."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import ndjson_of, observation, readings
from tests.http_service import FHIR_JSON, NDJSON, Service, outcome_issues

VITALS = {"system": "http://terminology.hl7.org/CodeSystem/observation-category"}


def categorised(rid: str, category: str, **kw: Any) -> dict[str, Any]:
    return observation(
        rid,
        category=[{"coding": [{**VITALS, "code": category}]}],
        identifier=[{"system": "urn:ward7", "value": f"dev-{rid}"}],
        **kw,
    )


def search(svc: Service, **params: Any) -> dict[str, Any]:
    with svc.client("reader") as client:
        response = client.get("/fhir/Observation", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def found_ids(body: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in body.get("entry", [])]


# --------------------------------------------------------------------------- update, delete


def test_put_creates_with_the_clients_id_then_adds_versions(svc: Service) -> None:
    with svc.client() as client:
        first = client.put("/fhir/Observation/gw-1", json=observation("gw-1"), headers=FHIR_JSON)
        second = client.put(
            "/fhir/Observation/gw-1", json=observation("gw-1", value=80), headers=FHIR_JSON
        )
        current = client.get("/fhir/Observation/gw-1")
        old = client.get("/fhir/Observation/gw-1/_history/1")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["meta"]["versionId"] == "1"
    assert second.headers["etag"] == 'W/"2"'
    assert second.headers["location"].endswith("/fhir/Observation/gw-1/_history/2")
    assert current.json()["valueQuantity"]["value"] == 80
    assert current.headers["etag"] == 'W/"2"'
    assert old.json()["valueQuantity"]["value"] == 72
    states = sorted((r["resource_version"], r["state"]) for r in readings(svc.engine))
    assert states == [("1", "superseded"), ("2", "raw")]


def test_put_honours_if_match(svc: Service) -> None:
    with svc.client() as client:
        client.put("/fhir/Observation/m", json=observation("m"), headers=FHIR_JSON)
        stale = client.put(
            "/fhir/Observation/m",
            json=observation("m", value=90),
            headers={**FHIR_JSON, "If-Match": 'W/"7"'},
        )
        fresh = client.put(
            "/fhir/Observation/m",
            json=observation("m", value=90),
            headers={**FHIR_JSON, "If-Match": 'W/"1"'},
        )
    assert stale.status_code == 412
    assert "current version is 1" in outcome_issues(stale)[0]["diagnostics"]
    assert fresh.status_code == 200
    assert fresh.json()["meta"]["versionId"] == "2"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/fhir/Observation/a", observation("b")),
        ("/fhir/Observation/a", observation(None)),
        ("/fhir/Observation/bad id", observation("bad id")),
    ],
)
def test_put_needs_the_urls_id_in_the_body(svc: Service, path: str, body: Any) -> None:
    with svc.client() as client:
        response = client.put(path, json=body, headers=FHIR_JSON)
    assert response.status_code == 400
    assert "id" in outcome_issues(response)[0]["diagnostics"]
    assert readings(svc.engine) == []


def test_delete_retracts_and_keeps_the_reading_for_audit(svc: Service) -> None:
    with svc.client() as client:
        client.put("/fhir/Observation/d", json=observation("d"), headers=FHIR_JSON)
        deleted = client.delete("/fhir/Observation/d")
        again = client.delete("/fhir/Observation/d")
        unknown = client.delete("/fhir/Observation/never")
        read = client.get("/fhir/Observation/d")
    assert (deleted.status_code, again.status_code) == (204, 204)
    assert unknown.status_code == 404
    assert read.status_code == 410
    assert [r["state"] for r in readings(svc.engine)] == ["retracted"]
    assert found_ids(search(svc, patient="p1")) == []


def test_delete_with_a_read_token_is_403(svc: Service) -> None:
    with svc.client() as client:
        client.put("/fhir/Observation/d", json=observation("d"), headers=FHIR_JSON)
    with svc.client("reader") as client:
        assert client.delete("/fhir/Observation/d").status_code == 403
    assert [r["state"] for r in readings(svc.engine)] == ["raw"]


# --------------------------------------------------------------------------- conditional create


def test_conditional_create_on_identifier_and_id(any_svc: Service) -> None:
    resource = categorised("x", "vital-signs")
    condition = {"If-None-Exist": "identifier=urn:ward7|dev-x"}
    with any_svc.client() as client:
        first = client.post("/fhir/Observation", json=resource, headers={**FHIR_JSON, **condition})
        second = client.post("/fhir/Observation", json=resource, headers={**FHIR_JSON, **condition})
        by_id = client.post(
            "/fhir/Observation",
            json=resource,
            headers={**FHIR_JSON, "If-None-Exist": f"_id={first.json()['id']}"},
        )
        client.post("/fhir/Observation", json=resource, headers=FHIR_JSON)  # a second copy
        ambiguous = client.post(
            "/fhir/Observation", json=resource, headers={**FHIR_JSON, **condition}
        )
        not_a_search = client.post(
            "/fhir/Observation", json=resource, headers={**FHIR_JSON, "If-None-Exist": "bogus=1"}
        )
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert by_id.status_code == 200
    assert ambiguous.status_code == 412
    assert not_a_search.status_code == 400
    assert len(readings(any_svc.engine)) == 2


# --------------------------------------------------------------------------- search results


@pytest.fixture
def five(any_svc: Service) -> Service:
    rows = [
        categorised(f"h{i}", "vital-signs", when=f"2026-01-05T0{i}:00:00Z") for i in range(4)
    ] + [categorised("lab", "laboratory", status="preliminary")]
    with any_svc.client() as client:
        assert client.post("/fhir/$ingest", content=ndjson_of(rows), headers=NDJSON).is_success
    return any_svc


def test_searchset_has_total_and_count_zero_has_no_next_link(five: Service) -> None:
    page = search(five, patient="p1", _count=2)
    assert page["total"] == 5
    assert [ln["relation"] for ln in page["link"]] == ["self", "next"]
    for params in ({"_count": 0}, {"_summary": "count"}):
        empty = search(five, patient="p1", **params)
        assert empty["total"] == 5
        assert "entry" not in empty
        assert [ln["relation"] for ln in empty["link"]] == ["self"]


def test_count_above_the_maximum_is_clamped(five: Service) -> None:
    page = search(five, _count=100_000)
    assert page["total"] == 5
    assert "_count=1000" in page["link"][0]["url"]


def test_sort_by_date(five: Service) -> None:
    assert found_ids(search(five, code="8867-4", _sort="date")) == ["h0", "h1", "h2", "h3", "lab"]
    assert found_ids(search(five, code="8867-4", _sort="-date")) == ["lab", "h3", "h2", "h1", "h0"]


def test_id_status_category_identifier(five: Service) -> None:
    assert found_ids(search(five, _id="h1,h3")) == ["h1", "h3"]
    assert found_ids(search(five, status="preliminary")) == ["lab"]
    assert found_ids(search(five, category="laboratory")) == ["lab"]
    assert found_ids(search(five, category=f"{VITALS['system']}|vital-signs")) == [
        "h0",
        "h1",
        "h2",
        "h3",
    ]
    assert found_ids(search(five, category="other|vital-signs")) == []
    assert found_ids(search(five, identifier="urn:ward7|dev-h2")) == ["h2"]
    assert found_ids(search(five, identifier="dev-h2,dev-lab")) == ["h2", "lab"]


def test_elements_keeps_what_was_asked_and_tags_it(five: Service) -> None:
    page = search(five, _id="h0", _elements="status,code")
    [resource] = [e["resource"] for e in page["entry"]]
    assert set(resource) == {"resourceType", "id", "meta", "status", "code"}
    assert resource["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_search_entries_always_have_id_and_full_url(svc: Service) -> None:
    with svc.client() as client:
        client.post("/fhir/$ingest", content=ndjson_of([observation(None)]), headers=NDJSON)
    [entry] = search(svc)["entry"]
    assert entry["resource"]["id"].startswith("sha1-")
    assert entry["fullUrl"].endswith(f"/fhir/Observation/{entry['resource']['id']}")
    assert entry["resource"]["meta"]["versionId"]


# --------------------------------------------------------------------------- issue 12: no 500s


@pytest.mark.parametrize("date", ["9999-12-31", "9999-12", "9999", "le9999-12-31", "0001-01-01"])
def test_dates_at_the_ends_of_the_calendar_are_answered(svc: Service, date: str) -> None:
    assert search(svc, date=date)["total"] == 0


@pytest.mark.parametrize("patient", ["/", "//", "Patient/", "Group/x"])
def test_empty_or_foreign_patient_references_are_400(svc: Service, patient: str) -> None:
    with svc.client("reader") as client:
        response = client.get("/fhir/Observation", params={"patient": patient})
    assert response.status_code == 400
    assert "patient=" in outcome_issues(response)[0]["diagnostics"]


def test_too_many_values_are_400_with_the_limit(svc: Service) -> None:
    with svc.client("reader") as client:
        response = client.get("/fhir/Observation", params=[("code", f"c{i}") for i in range(2000)])
        under = client.get("/fhir/Observation", params=[("code", f"c{i}") for i in range(200)])
    assert response.status_code == 400
    assert "at most 200" in outcome_issues(response)[0]["diagnostics"]
    assert under.status_code == 200


# --------------------------------------------------------------------------- formats, Bundles


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"_format": "xml"}, {}),
        ({"_format": "application/fhir+xml"}, {}),
        ({}, {"Accept": "application/fhir+xml"}),
        ({}, {"Accept": "application/xml, text/xml;q=0.9"}),
    ],
)
def test_xml_is_406(svc: Service, params: dict[str, str], headers: dict[str, str]) -> None:
    with svc.client() as client:
        search_response = client.get("/fhir/Observation", params=params, headers=headers)
        metadata = client.get("/fhir/metadata", params=params, headers=headers)
    assert (search_response.status_code, metadata.status_code) == (406, 406)
    assert outcome_issues(search_response)[0]["code"] == "not-supported"


def test_json_and_wildcard_accept_are_served(svc: Service) -> None:
    with svc.client() as client:
        for accept in ("application/fhir+json", "application/json", "*/*", "text/xml, */*"):
            assert client.get("/fhir/metadata", headers={"Accept": accept}).status_code == 200
        assert client.get("/fhir/metadata", params={"_format": "json"}).status_code == 200


def test_transaction_urn_uuid_subject_reads_back_resolved(svc: Service) -> None:
    patient = "urn:uuid:0b5a6a4e-0000-4000-8000-000000000001"
    obs = observation("t1", subject={"reference": patient})
    document = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient,
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": obs, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    with svc.client() as client:
        answer = client.post("/fhir", json=document, headers=FHIR_JSON).json()
        created = answer["entry"][1]["response"]["location"].split("/_history")[0]
        read = client.get(f"/fhir/{created}").json()
    patient_entry = answer["entry"][0]["response"]
    assert patient_entry["status"] == "200 OK"
    assert "not stored" in patient_entry["outcome"]["issue"][0]["diagnostics"]
    assert read["subject"]["reference"] == "Patient/0b5a6a4e-0000-4000-8000-000000000001"
    assert found_ids(search(svc, patient="0b5a6a4e-0000-4000-8000-000000000001")) == [read["id"]]
