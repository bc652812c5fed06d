"""medsleep serve driven by two FHIR clients from PyPI, as integrators drive it: fhirpy
(create, update, search with paging and count, read, delete) and SMART's fhirclient (the
CapabilityStatement through its models, create, update, read, search, delete)."""

from __future__ import annotations

from typing import Any

import pytest
from fhirclient import client as smart_client
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.observation import Observation
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from tests.helpers import observation, readings
from tests.http_service import Service


def fhirpy_client(svc: Service) -> SyncFHIRClient:
    return SyncFHIRClient(f"{svc.base}/fhir", authorization=f"Bearer {svc.tokens['writer']}")


def test_fhirpy_save_update_search_count_delete(any_svc: Service) -> None:
    client = fhirpy_client(any_svc)
    created = client.resource("Observation", **observation(None))
    created.save()  # POST: the server's id, version and lastUpdated come back into the object
    assert created.id
    assert created["meta"]["versionId"] == "1"
    created["valueQuantity"]["value"] = 80
    created.save()  # PUT now that it has an id
    assert created["meta"]["versionId"] == "2"
    for i in range(5):
        client.resource("Observation", **observation(None, when=f"2026-01-05T0{i}:00:00Z")).save()
    found = client.resources("Observation").search(patient="p1").limit(2).fetch_all()
    assert len(found) == 6  # followed three pages of two
    assert len({r.id for r in found}) == 6
    assert client.resources("Observation").search(patient="p1").count() == 6
    assert client.resources("Observation").search(patient="nobody").count() == 0
    newest = client.resources("Observation").search(patient="p1").sort("-date").first()
    assert newest is not None
    assert newest["effectiveDateTime"] == "2026-01-05T10:00:00Z"
    fetched = client.reference("Observation", created.id).to_resource()
    assert fetched["valueQuantity"]["value"] == 80
    fetched.delete()
    with pytest.raises(ResourceNotFound):
        client.reference("Observation", created.id).to_resource()
    assert client.resources("Observation").search(patient="p1").count() == 5


def test_fhirpy_put_with_a_gateways_own_id(svc: Service) -> None:
    client = fhirpy_client(svc)
    client.resource("Observation", **observation("ward7-bed3-hr-0001")).save()
    stored = client.reference("Observation", "ward7-bed3-hr-0001").to_resource()
    assert stored["meta"]["versionId"] == "1"
    assert [r["resource_key"] for r in readings(svc.engine)] == ["Observation/ward7-bed3-hr-0001"]


def test_fhirpy_get_or_create_creates_once(svc: Service) -> None:
    # fhirpy 2.3.1 POSTs the resource with the search as the query string
    # (POST Observation?identifier=...) and reads 201 as "created", 200 as "found".
    client = fhirpy_client(svc)
    tag = [{"system": "urn:ward7:device", "value": "bed3-hr-0001"}]
    wanted = client.resource("Observation", **observation(None, identifier=tag))
    search = client.resources("Observation").search(identifier="urn:ward7:device|bed3-hr-0001")
    first, created = search.get_or_create(wanted)
    again, created_again = search.get_or_create(wanted)
    assert (created, created_again) == (True, False)
    assert first.id == again.id
    assert again["meta"]["versionId"] == "1"
    assert len(readings(svc.engine)) == 1


@pytest.fixture
def smart(svc: Service) -> Any:
    settings = {"app_id": "medsleep-tests", "api_base": f"{svc.base}/fhir"}
    found = smart_client.FHIRClient(settings=settings)
    found.server.session.headers["Authorization"] = f"Bearer {svc.tokens['writer']}"
    return found


def test_fhirclient_reads_the_capability_statement(smart: Any) -> None:
    smart.server.get_capability()
    statement = smart.server.capabilityStatement
    assert isinstance(statement, CapabilityStatement)
    [resource] = statement.rest[0].resource
    assert {i.code for i in resource.interaction} >= {"create", "update", "delete"}


def test_fhirclient_create_update_read_search_delete(smart: Any, svc: Service) -> None:
    created = Observation(observation(None))
    answer = created.create(smart.server)
    assert answer["meta"]["versionId"] == "1"
    stored = Observation.read(answer["id"], smart.server)
    assert stored.valueQuantity.value == 72
    stored.valueQuantity.value = 90
    updated = stored.update(smart.server)
    assert updated["meta"]["versionId"] == "2"
    search = Observation.where(struct={"patient": "p1", "code": "8867-4"})
    [match] = list(search.perform_resources_iter(smart.server))
    assert match.id == answer["id"]
    assert match.valueQuantity.value == 90
    Observation.read(answer["id"], smart.server).delete(smart.server)
    assert list(search.perform_resources_iter(smart.server)) == []
    assert [r["state"] for r in readings(svc.engine)] == ["superseded", "retracted"]
