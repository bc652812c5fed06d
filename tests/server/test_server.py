"""The HTTP service as a client sees it: a real uvicorn server on 127.0.0.1, a real HTTP client.

Writes: one Observation, batch and transaction Bundles, NDJSON streams; auth, limits and the
OperationOutcome of every error. The core write path also runs against PostgreSQL.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from medsleep.audit import verify_chain
from medsleep.ingest import ingest_paths
from medsleep.store.engine import open_store
from medsleep.store.models import IngestBatch, Quarantine, Reading
from tests.helpers import ndjson_of, observation, quarantined, readings
from tests.http_service import FHIR_JSON, NDJSON, Service, outcome_issues, service

TABLES = (Reading, Quarantine, IngestBatch)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in TABLES
        }


def bundle(kind: str, *resources: dict[str, Any], **entry_extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "Observation"}, **entry_extra}
            for r in resources
        ],
    }


# --------------------------------------------------------------------------- one Observation


def test_create_assigns_id_and_version_and_answers_the_stored_resource(
    any_svc: Service,
) -> None:
    """R4 §3.1.0.8: the server assigns the id (a POSTed one is ignored), versionId and
    lastUpdated, and answers the stored resource with ETag, Last-Modified and Location."""
    with any_svc.client() as client:
        created = client.post("/fhir/Observation", json=observation("hr-1"), headers=FHIR_JSON)
        assert created.status_code == 201
        body = created.json()
        rid = body["id"]
        assert rid != "hr-1"
        assert body["meta"]["versionId"] == "1"
        assert body["meta"]["lastUpdated"].endswith("Z")
        where = created.headers["location"]
        assert where == f"{any_svc.base}/fhir/Observation/{rid}/_history/1"
        assert created.headers["etag"] == 'W/"1"'
        assert created.headers["last-modified"].endswith("GMT")
        read = client.get(where)
        assert read.json() == body  # the Location resolves to what was answered
        assert read.headers["etag"] == 'W/"1"'
        again = client.post("/fhir/Observation", json=observation("hr-1"), headers=FHIR_JSON)
    assert again.status_code == 201  # a second create is a second resource
    assert again.json()["id"] not in (rid, "hr-1")
    rows = readings(any_svc.engine)
    assert sorted(r["resource_key"] for r in rows) == sorted(
        [f"Observation/{rid}", f"Observation/{again.json()['id']}"]
    )
    with any_svc.engine.connect() as conn:
        assert verify_chain(conn).ok


def test_observation_without_id_gets_one(svc: Service) -> None:
    with svc.client() as client:
        created = client.post("/fhir/Observation", json=observation(None), headers=FHIR_JSON)
        assert created.status_code == 201
        read = client.get(created.headers["location"])
    assert read.status_code == 200
    assert read.json()["id"] == created.json()["id"]
    assert read.json()["valueQuantity"]["value"] == 72


def test_prefer_return_minimal_and_operation_outcome(svc: Service) -> None:
    with svc.client() as client:
        minimal = client.post(
            "/fhir/Observation",
            json=observation("a"),
            headers={**FHIR_JSON, "Prefer": "return=minimal"},
        )
        outcome = client.post(
            "/fhir/Observation",
            json=observation("b"),
            headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"},
        )
    assert (minimal.status_code, minimal.content) == (201, b"")
    assert outcome.status_code == 201
    assert outcome_issues(outcome)[0]["severity"] == "information"


def test_invalid_observation_is_quarantined_and_answered_400(svc: Service) -> None:
    with svc.client() as client:
        response = client.post(
            "/fhir/Observation", json=observation("bad", value="high"), headers=FHIR_JSON
        )
        broken = client.post("/fhir/Observation", content=b"{not json", headers=FHIR_JSON)
    assert response.status_code == 400
    [found] = outcome_issues(response)
    assert found["severity"] == "error"
    assert "not a FHIR decimal" in found["diagnostics"]
    assert broken.status_code == 400
    assert "invalid JSON" in outcome_issues(broken)[0]["diagnostics"]
    rows = quarantined(svc.engine)
    assert [(r["source"], r["position"]) for r in rows] == [("http", "body")] * 2
    assert readings(svc.engine) == []


def test_observation_without_a_numeric_value_is_accepted_not_stored(svc: Service) -> None:
    resource = observation("note")
    del resource["valueQuantity"]
    resource["valueString"] = "patient comfortable"
    with svc.client() as client:
        response = client.post("/fhir/Observation", json=resource, headers=FHIR_JSON)
    assert response.status_code == 200
    [found] = outcome_issues(response)
    assert found["severity"] == "information"
    assert "non-numeric value" in found["diagnostics"]
    assert "location" not in response.headers
    assert readings(svc.engine) == []


def test_other_resource_types_are_refused_without_writing(svc: Service) -> None:
    with svc.client() as client:
        response = client.post(
            "/fhir/Observation", json={"resourceType": "Patient", "id": "p1"}, headers=FHIR_JSON
        )
    assert response.status_code == 400
    assert "Patient" in outcome_issues(response)[0]["diagnostics"]
    assert counts(svc.engine) == {"reading": 0, "quarantine": 0, "ingest_batch": 0}


# --------------------------------------------------------------------------- auth and limits

WRITES = [
    ("/fhir/Observation", FHIR_JSON, json.dumps(observation("x"))),
    ("/fhir", FHIR_JSON, json.dumps(bundle("batch", observation("x")))),
    ("/fhir/$ingest", NDJSON, ndjson_of([observation("x"), observation("y")])),
]


@pytest.mark.parametrize(("path", "headers", "body"), WRITES)
@pytest.mark.parametrize("who", [None, "nobody", "basic"])
def test_no_or_wrong_token_is_401_and_writes_nothing(
    svc: Service, path: str, headers: dict[str, str], body: str, who: str | None
) -> None:
    auth = {"basic": {"Authorization": "Basic d3JpdGVyOnNlY3JldA=="}}.get(str(who), {})
    with svc.client(None if who == "basic" else who) as client:
        response = client.post(path, content=body, headers={**headers, **auth})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert outcome_issues(response)[0]["code"] == "login"
    assert counts(svc.engine) == {"reading": 0, "quarantine": 0, "ingest_batch": 0}


def test_read_only_token_cannot_write(svc: Service) -> None:
    with svc.client("reader") as client:
        response = client.post("/fhir/Observation", json=observation("x"), headers=FHIR_JSON)
    assert response.status_code == 403
    assert "write" in outcome_issues(response)[0]["diagnostics"]
    assert counts(svc.engine)["reading"] == 0


def test_revoked_token_stops_working_without_restart(svc: Service, tmp_path: Path) -> None:
    from medsleep.auth.tokens import revoke_token

    with svc.client() as client:
        assert client.get("/fhir/Observation").status_code == 200
        assert revoke_token(tmp_path / "tokens.toml", "writer")
        assert client.get("/fhir/Observation").status_code == 401


def test_bodies_over_the_limit_are_413_and_write_nothing(tmp_path: Path, sqlite_url: str) -> None:
    big = observation("big", note=[{"text": "x" * 4000}])
    with service(tmp_path, sqlite_url, max_body_bytes=2000) as svc, svc.client() as client:
        declared = client.post("/fhir/Observation", json=big, headers=FHIR_JSON)
        streamed = client.post(  # no Content-Length: counted while it arrives
            "/fhir", content=iter([json.dumps(bundle("batch", big)).encode()]), headers=FHIR_JSON
        )
        line = client.post("/fhir/$ingest", content=ndjson_of([big]), headers=NDJSON)
        for response in (declared, streamed, line):
            assert response.status_code == 413
            assert outcome_issues(response)[0]["code"] == "too-costly"
        assert "2,000" in outcome_issues(declared)[0]["diagnostics"]
        assert client.get("/healthz").status_code == 200  # and the server lives on
    assert counts(svc.engine)["reading"] == counts(svc.engine)["quarantine"] == 0


def test_ndjson_stream_over_its_limit_keeps_what_came_before(
    tmp_path: Path, sqlite_url: str
) -> None:
    lines = ndjson_of([observation(f"o{i}") for i in range(40)]).encode()
    settings = {"max_ndjson_bytes": len(lines) // 2, "chunk_size": 5}
    with service(tmp_path, sqlite_url, **settings) as svc:

        def body() -> Iterator[bytes]:
            yield lines[:3000]
            deadline = time.monotonic() + 20
            while not readings(svc.engine) and time.monotonic() < deadline:
                time.sleep(0.05)
            yield lines[3000:]

        with svc.client() as client:
            untyped = client.post("/fhir/$ingest", content=lines)
            response = client.post("/fhir/$ingest", content=body(), headers=NDJSON)
    assert untyped.status_code == 415
    assert response.status_code == 413
    diagnostics = outcome_issues(response)[0]["diagnostics"]
    stored = len(readings(svc.engine))
    assert 0 < stored < 40
    assert f"{stored} resources before it were ingested" in diagnostics


def test_wrong_content_type_is_415(svc: Service) -> None:
    with svc.client() as client:
        response = client.post(
            "/fhir/Observation", json=observation("x"), headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 415
    assert outcome_issues(response)[0]["code"] == "not-supported"


# --------------------------------------------------------------------------- NDJSON


def test_ndjson_counts_are_the_clis(tmp_path: Path, any_svc: Service) -> None:
    lines = [
        json.dumps(observation("a")),
        json.dumps(observation("a")),  # a duplicate
        json.dumps({"resourceType": "Patient", "id": "p1"}),  # skipped
        "{broken",  # quarantined
        "",
        json.dumps(bundle("collection", observation("b"), observation("c", code="9279-1"))),
    ]
    body = "\n".join(lines) + "\n"
    with any_svc.client() as client:
        response = client.post("/fhir/$ingest", content=body, headers=NDJSON)
    assert response.status_code == 200
    report = response.json()
    (tmp_path / "same.ndjson").write_text(body)
    cli_store = open_store(f"sqlite:///{tmp_path / 'cli.db'}")
    cli = ingest_paths(cli_store, [str(tmp_path / "same.ndjson")])
    cli_store.dispose()
    ignore = ("batch_id", "seconds")
    assert {k: v for k, v in report.items() if k not in ignore} == {
        k: v for k, v in cli.as_json().items() if k not in ignore
    }
    assert report["resources"] == 6
    assert report["resources"] == (
        report["stored"] + report["duplicates"] + report["skipped"] + report["quarantined"]
    )
    assert [r["position"] for r in quarantined(any_svc.engine)] == ["line 4"]


def test_ndjson_is_written_while_the_body_still_streams(tmp_path: Path, sqlite_url: str) -> None:
    """The server writes the first chunks before the client has sent the rest."""
    with service(tmp_path, sqlite_url, chunk_size=50) as svc:
        seen_midway: list[int] = []

        def body() -> Iterator[bytes]:
            yield ndjson_of([observation(f"early-{i}") for i in range(120)]).encode()
            deadline = time.monotonic() + 20
            while not readings(svc.engine) and time.monotonic() < deadline:
                time.sleep(0.05)
            seen_midway.append(len(readings(svc.engine)))
            yield ndjson_of([observation(f"late-{i}") for i in range(30)]).encode()

        with svc.client() as client:
            response = client.post("/fhir/$ingest", content=body(), headers=NDJSON)
    assert response.status_code == 200
    assert response.json()["stored"] == 150
    assert seen_midway
    assert 0 < seen_midway[0] < 150


def test_concurrent_clients_lose_and_duplicate_nothing(any_svc: Service) -> None:
    """8 clients at once, overlapping on purpose: every Observation stored once, every batch
    closed, the audit chain intact (concurrent batches must not fork it)."""

    def send(client_no: int) -> list[dict[str, Any]]:
        reports = []
        with any_svc.client() as client:
            for request_no in range(4):
                first = (client_no * 4 + request_no) * 10
                resources = [observation(f"c{i}") for i in range(first, first + 15)]
                response = client.post(
                    "/fhir/$ingest", content=ndjson_of(resources), headers=NDJSON
                )
                assert response.status_code == 200, response.text
                reports.append(response.json())
        return reports

    with ThreadPoolExecutor(8) as pool:
        reports = [r for batch in pool.map(send, range(8)) for r in batch]
    assert sum(r["stored"] for r in reports) == 8 * 4 * 10 + 5
    assert sum(r["stored"] + r["duplicates"] for r in reports) == 8 * 4 * 15
    keys = [r["resource_key"] for r in readings(any_svc.engine)]
    assert len(keys) == len(set(keys)) == 325
    with any_svc.engine.connect() as conn:
        assert verify_chain(conn).events == 32
        table = IngestBatch.__table__  # type: ignore[attr-defined]
        statuses = conn.execute(select(table.c.status)).scalars().all()
    assert statuses == ["done"] * 32


# --------------------------------------------------------------------------- Bundles


def test_transaction_is_all_or_nothing(any_svc: Service) -> None:
    good = bundle("transaction", observation("t1"), observation("t2", code="9279-1"))
    bad = bundle(
        "transaction", observation("t3"), observation("t4", status="bogus"), observation("t5")
    )
    with any_svc.client() as client:
        refused = client.post("/fhir", json=bad, headers=FHIR_JSON)
        assert counts(any_svc.engine) == {"reading": 0, "quarantine": 0, "ingest_batch": 0}
        accepted = client.post("/fhir", json=good, headers=FHIR_JSON)
    assert refused.status_code == 400
    issues = outcome_issues(refused)
    assert "nothing written" in issues[0]["diagnostics"]
    assert [i.get("expression") for i in issues[1:]] == [["Bundle.entry[1]"]]
    assert accepted.status_code == 200
    answer = accepted.json()
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 2
    # POST entries are creates: the server assigns the ids (the bodies' t1 and t2 are ignored)
    locations = [e["response"]["location"] for e in answer["entry"]]
    assert all(re.fullmatch(r"Observation/[0-9a-f-]{36}/_history/1", w) for w in locations)
    assert sorted(r["resource_key"] for r in readings(any_svc.engine)) == sorted(
        w.removesuffix("/_history/1") for w in locations
    )


def test_transaction_with_an_unsupported_entry_writes_nothing(svc: Service) -> None:
    deleting = bundle("transaction", observation("t1"))
    deleting["entry"].append({"request": {"method": "DELETE", "url": "Observation/t0"}})
    with svc.client() as client:
        response = client.post("/fhir", json=deleting, headers=FHIR_JSON)
    assert response.status_code == 400
    assert "DELETE" in outcome_issues(response)[1]["diagnostics"]
    assert counts(svc.engine) == {"reading": 0, "quarantine": 0, "ingest_batch": 0}


def test_transaction_resolves_urn_uuid_subjects(svc: Service) -> None:
    patient = "urn:uuid:0b5a6a4e-0000-4000-8000-000000000001"
    obs = observation("t1")
    obs["subject"] = {"reference": patient}
    document = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient,
                "resource": {"resourceType": "Patient", "id": "pat-9"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": obs, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    with svc.client() as client:
        response = client.post("/fhir", json=document, headers=FHIR_JSON)
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["200 OK", "201 Created"]  # the Patient is accepted, not stored
    assert [r["patient"] for r in readings(svc.engine)] == ["pat-9"]


def test_batch_answers_each_entry_and_quarantines_rejects(svc: Service) -> None:
    from fhir.resources.R4B.bundle import Bundle

    with svc.client() as client:
        client.post("/fhir/$ingest", content=ndjson_of([observation("old")]), headers=NDJSON)
        document = bundle(
            "batch",
            observation("new"),
            observation("old"),
            {"resourceType": "Patient", "id": "p1"},
            observation("bad", status="bogus"),
        )
        document["entry"][1]["request"] = {"method": "PUT", "url": "Observation/old"}
        document["entry"].append({"request": {"method": "GET", "url": "Observation/old"}})
        response = client.post("/fhir", json=document, headers=FHIR_JSON)
    assert response.status_code == 200
    answer = response.json()
    Bundle.model_validate(answer)
    assert answer["type"] == "batch-response"
    entries = [e["response"] for e in answer["entry"]]
    assert [e["status"] for e in entries] == [
        "201 Created",
        "200 OK",
        "200 OK",
        "400 Bad Request",
        "400 Bad Request",
    ]
    assert entries[1]["outcome"]["issue"][0]["code"] == "duplicate"
    assert "not an Observation (Patient)" in entries[2]["outcome"]["issue"][0]["diagnostics"]
    assert entries[3]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[3]"]
    assert "GET" in entries[4]["outcome"]["issue"][0]["diagnostics"]
    assert [(q["position"], q["source"]) for q in quarantined(svc.engine)] == [
        ("entry[3]", "HTTP POST /fhir batch (writer)")
    ]
    created = entries[0]["location"].removesuffix("/_history/1")  # a POST: the server's id
    assert created != "Observation/new"
    assert sorted(r["resource_key"] for r in readings(svc.engine)) == sorted(
        [created, "Observation/old"]
    )


def test_batch_entries_get_ids_as_plain_creates_and_updates_do(svc: Service) -> None:
    document = bundle("batch", observation("client-id"), observation("kept", value=80))
    document["entry"][1]["request"] = {"method": "PUT", "url": "Observation/kept"}
    document["entry"].append(
        {"resource": observation("x"), "request": {"method": "PUT", "url": "Observation/y"}}
    )
    with svc.client() as client:
        answer = client.post("/fhir", json=document, headers=FHIR_JSON).json()
        entries = [e["response"] for e in answer["entry"]]
        created = client.get(f"/fhir/{entries[0]['location'].split('/_history')[0]}").json()
        kept = client.get("/fhir/Observation/kept").json()
    assert [e["status"] for e in entries] == ["201 Created", "201 Created", "400 Bad Request"]
    assert created["id"] != "client-id"
    assert created["meta"]["versionId"] == "1"
    assert "lastUpdated" in created["meta"]
    assert kept["valueQuantity"]["value"] == 80
    assert "Observation/y" in entries[2]["outcome"]["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"[1, 2", "not JSON"),
        (json.dumps({"resourceType": "Observation"}).encode(), "takes a Bundle"),
        (json.dumps({"resourceType": "Bundle", "type": "collection"}).encode(), "batch or"),
    ],
)
def test_post_fhir_needs_a_batch_or_transaction_bundle(
    svc: Service, document: bytes, words: str
) -> None:
    with svc.client() as client:
        response = client.post("/fhir", content=document, headers=FHIR_JSON)
    assert response.status_code == 400
    assert words in outcome_issues(response)[0]["diagnostics"]
    assert counts(svc.engine) == {"reading": 0, "quarantine": 0, "ingest_batch": 0}


def test_a_keyed_server_appends_events_that_verify_with_the_key(tmp_path: Path) -> None:
    """The audit key set at the edge keys the server's events like the CLI's (issue 12)."""
    from medsleep.audit import verify_chain
    from tests.http_service import service

    key = b"k" * 32
    url = f"sqlite:///{tmp_path / 'keyed.db'}"
    with service(tmp_path, url, audit_key=key) as svc:
        body = observation("keyed-1")
        answer = httpx.post(
            f"{svc.base}/fhir/Observation",
            json=body,
            headers={"Authorization": f"Bearer {svc.tokens['writer']}"},
        )
        assert answer.status_code == 201, answer.text
        with svc.engine.connect() as conn:
            keyed = verify_chain(conn, key=key)
            wrong = verify_chain(conn, key=b"x" * 32)
    assert keyed.ok, keyed
    assert keyed.events >= 1
    assert not wrong.ok
