"""A stored Observation as the server answers it: with its id, ``meta.versionId`` and
``meta.lastUpdated`` (the stored text may lack them), its ``urn:uuid`` subject resolved to the
Patient it was resolved to at ingest (R4 §3.1.0.11.2), and ``_elements`` applied."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

import orjson

from medsleep.server.fhir_http import observation_id
from medsleep.server.hot_store import StoredObservation
from medsleep.timefmt import iso, ms_to_datetime, parse_iso_ms

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
_ALWAYS = ("resourceType", "id", "meta")  # kept by _elements (the spec's mandatory elements)


def resource_of(stored: StoredObservation, elements: tuple[str, ...] | None = None) -> Any:
    resource = orjson.loads(stored.resource_json)
    rid = observation_id(stored.resource_key)
    if rid is not None:
        resource["id"] = rid
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    meta["versionId"] = stored.version
    meta.setdefault("lastUpdated", iso(stored.stored_ms))
    resource["meta"] = meta
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if stored.patient and isinstance(reference, str) and reference.startswith("urn:uuid:"):
        resource["subject"] = {**subject, "reference": f"Patient/{stored.patient}"}
    if elements is not None:
        wanted = set(elements) | set(_ALWAYS)
        resource = {k: v for k, v in resource.items() if k in wanted}
        resource["meta"] = {**meta, "tag": [*meta.get("tag", []), SUBSETTED]}
    return resource


def etag(version: str) -> str:
    return f'W/"{version}"'


def version_headers(resource: dict[str, Any]) -> dict[str, str]:
    """``ETag`` and ``Last-Modified`` of an answered resource."""
    meta = resource["meta"]
    headers = {"ETag": etag(str(meta["versionId"]))}
    try:
        modified = ms_to_datetime(parse_iso_ms(str(meta["lastUpdated"])))
        headers["Last-Modified"] = format_datetime(modified, usegmt=True)
    except (ValueError, OverflowError):
        pass  # a stored lastUpdated that is not an instant: no Last-Modified rather than a 500
    return headers
