"""The Bulk Data Access API over HTTP, driven step by step as a Bulk Data client drives it
(kick-off with ``Prefer: respond-async``, polling ``Content-Location`` as ``Retry-After``
says, downloading each output URL with the bearer token, checking counts and checksums,
DELETE to cancel), against a real server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from medsleep.audit import verify_chain
from tests.helpers import ndjson_of, observation
from tests.http_service import NDJSON, Service, outcome_issues, service

BULK = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


@pytest.fixture
def bulk(tmp_path: Path, sqlite_url: str) -> Iterator[Service]:
    settings = {"export_dir": tmp_path / "exports", "archive_root": tmp_path / "archive"}
    with service(tmp_path, sqlite_url, **settings) as svc:
        rows = [observation(f"o{i}", when=f"2026-01-05T0{i}:00:00Z") for i in range(5)]
        with svc.client() as client:
            assert client.post("/fhir/$ingest", content=ndjson_of(rows), headers=NDJSON).is_success
        yield svc


def wait_for_manifest(client: httpx.Client, status_url: str) -> httpx.Response:
    """Poll as the IG says: 202 with X-Progress means wait Retry-After seconds."""
    deadline = time.monotonic() + 60
    while True:
        response = client.get(status_url)
        if response.status_code != 202:
            return response
        assert response.headers["x-progress"]
        assert time.monotonic() < deadline, "the export did not finish"
        time.sleep(min(float(response.headers["retry-after"]), 0.2))


def kick_off(client: httpx.Client, path: str = "/fhir/$export", **params: str) -> str:
    response = client.get(path, params=params, headers=BULK)
    assert response.status_code == 202, response.text
    location: str = response.headers["content-location"]
    return location


def test_a_bulk_client_exports_downloads_and_checks(bulk: Service) -> None:
    with bulk.client("reader") as client:
        status_url = kick_off(client, _type="Observation,AuditEvent")
        assert status_url.startswith(f"{bulk.base}/fhir/$export-status/")
        done = wait_for_manifest(client, status_url)
        assert done.status_code == 200, done.text
        manifest: dict[str, Any] = done.json()
        assert manifest["request"] == f"{bulk.base}/fhir/$export?_type=Observation%2CAuditEvent"
        assert manifest["requiresAccessToken"] is True
        assert manifest["transactionTime"].endswith("Z")
        assert [item["type"] for item in manifest["output"]] == ["Observation", "AuditEvent"]
        for item in manifest["output"]:
            assert item["url"].startswith(f"{bulk.base}/fhir/$export-file/")
            data = client.get(item["url"]).content
            assert hashlib.sha256(data).hexdigest() == item["extension"]["sha256"]
            assert len(data.splitlines()) == item["count"]
            assert {orjson.loads(line)["resourceType"] for line in data.splitlines()} == {
                item["type"]
            }
            with httpx.Client(timeout=30) as anonymous:
                assert anonymous.get(item["url"]).status_code == 401  # the file needs the token
    assert manifest["output"][0]["count"] == 5
    with bulk.engine.connect() as conn:
        assert verify_chain(conn).ok


def test_patient_level_kick_off_and_cancel(bulk: Service) -> None:
    with bulk.client("reader") as client:
        status_url = kick_off(client, "/fhir/Patient/$export")
        manifest = wait_for_manifest(client, status_url).json()
        file_url = manifest["output"][0]["url"]
        assert client.get(file_url).status_code == 200
        cancelled = client.delete(status_url)
        assert cancelled.status_code == 202
        assert client.get(status_url).status_code == 404
        assert client.get(file_url).status_code == 404
    job = status_url.rsplit("/", 1)[1]
    assert not (bulk_dir(bulk) / job / "files").exists()  # the PHI is gone


def bulk_dir(svc: Service) -> Path:
    return Path(svc.engine.url.database or "").parent / "exports"


def test_a_job_is_visible_only_to_its_token(bulk: Service) -> None:
    with bulk.client("reader") as reader, bulk.client("writer") as writer:
        status_url = kick_off(reader)
        wait_for_manifest(reader, status_url)
        assert writer.get(status_url).status_code == 404
        assert writer.delete(status_url).status_code == 404
        assert reader.get(status_url).status_code == 200


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"_type": "Patient"}, "_type Patient"),
        ({"_outputFormat": "text/csv"}, "only ndjson"),
        ({"_since": "yesterday"}, "not a FHIR instant"),
        ({"_typeFilter": "Observation?code=1"}, "unsupported $export parameter"),
        ({"includeArchived": "maybe"}, "true or false"),
    ],
)
def test_bad_kick_offs_are_400(bulk: Service, params: dict[str, str], words: str) -> None:
    with bulk.client("reader") as client:
        response = client.get("/fhir/$export", params=params, headers=BULK)
    assert response.status_code == 400
    assert words in outcome_issues(response)[0]["diagnostics"]


def test_since_is_on_last_updated_so_exports_can_follow_each_other(bulk: Service) -> None:
    # The five readings were measured in January 2026 and stored just now: _since is about
    # when medsleep stored them (lastUpdated), as the Bulk Data IG says.
    with bulk.client("reader") as client:
        status_url = kick_off(client, _since="2026-01-05T03:00:00Z", _type="Observation")
        first = wait_for_manifest(client, status_url).json()
        [item] = first["output"]
        assert item["count"] == 5
        status_url = kick_off(client, _since=first["transactionTime"], _type="Observation")
        assert wait_for_manifest(client, status_url).json()["output"] == []
    rows = [observation(f"new{i}", when="2026-01-05T00:30:00Z") for i in range(2)]
    with bulk.client() as client:
        assert client.post("/fhir/$ingest", content=ndjson_of(rows), headers=NDJSON).is_success
    with bulk.client("reader") as client:
        status_url = kick_off(client, _since=first["transactionTime"], _type="Observation")
        [item] = wait_for_manifest(client, status_url).json()["output"]
        lines = client.get(item["url"]).content.splitlines()
    assert item["count"] == 2
    assert {orjson.loads(line)["id"] for line in lines} == {"new0", "new1"}


def test_without_an_export_folder_export_is_501_and_not_claimed(svc: Service) -> None:
    with svc.client("reader") as client:
        response = client.get("/fhir/$export", headers=BULK)
        statement = client.get("/fhir/metadata").json()
    assert response.status_code == 501
    assert "export" not in {op["name"] for op in statement["rest"][0]["operation"]}


def test_the_capability_statement_claims_bulk_export(bulk: Service) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    with bulk.client(None) as client:
        statement = client.get("/fhir/metadata").json()
    CapabilityStatement.model_validate(statement)
    assert statement["instantiates"] == [
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
    ]
    assert "export" in {op["name"] for op in statement["rest"][0]["operation"]}
