"""FHIR over HTTP: media types, the error and response types, response Bundles, and the mapping
between stored resource keys and the ids in ``Location`` headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response

from medsleep.fhir.outcome import issue, operation_outcome
from medsleep.ingest.request import EntryResult

FHIR_JSON = "application/fhir+json"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
NDJSON_TYPES = ("application/fhir+ndjson", "application/ndjson", "application/x-ndjson")
SHA1_ID = "sha1-"  # ids for Observations that came without one: their content digest


class FhirError(Exception):
    """An HTTP error answered with an OperationOutcome."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        *,
        issues: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issues = issues or [issue("error", code, diagnostics)]
        self.headers = headers or {}


class FhirResponse(Response):
    """``application/fhir+json``, serialised with orjson."""

    media_type = FHIR_JSON

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, FHIR_JSON, background)

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: FhirError) -> FhirResponse:
    return FhirResponse(operation_outcome(error.issues), error.status, error.headers)


def observation_id(resource_key: str) -> str | None:
    """The id a stored Observation is read back by, or None when its key has no id form."""
    if resource_key.startswith("Observation/"):
        return resource_key.removeprefix("Observation/")
    if resource_key.startswith("urn:uuid:"):
        return resource_key.removeprefix("urn:uuid:")
    if resource_key.startswith("urn:sha1:"):
        return SHA1_ID + resource_key.removeprefix("urn:sha1:")
    return None  # a fullUrl of another server: kept as the key, but not readable by id


def keys_for_id(rid: str) -> list[str]:
    """Resource keys an id in a URL may stand for (the inverse of ``observation_id``)."""
    keys = [f"Observation/{rid}", f"urn:uuid:{rid}"]
    if rid.startswith(SHA1_ID):
        keys.append("urn:sha1:" + rid.removeprefix(SHA1_ID))
    return keys


def location(resource_key: str | None, version: str | None) -> str | None:
    """``Observation/{id}/_history/{version}``, relative to the FHIR base."""
    rid = observation_id(resource_key) if resource_key else None
    if rid is None or version is None:
        return None
    return f"Observation/{quote(rid, safe='')}/_history/{quote(version, safe='')}"


def entry_response(result: EntryResult) -> dict[str, Any]:
    """One ``Bundle.entry.response`` of a batch- or transaction-response."""
    where = location(result.resource_key, result.version)
    response: dict[str, Any]
    if result.outcome in ("created", "duplicate"):
        response = {"status": "201 Created" if result.outcome == "created" else "200 OK"}
        if where is not None:
            response["location"] = where
        response["etag"] = f'W/"{result.version}"'
        if result.outcome == "duplicate":
            note = "this version of the resource was already stored; nothing changed"
            response["outcome"] = operation_outcome([issue("information", "duplicate", note)])
    elif result.outcome == "skipped":
        note = f"accepted but not stored: {result.detail}"
        response = {
            "status": "200 OK",
            "outcome": operation_outcome([issue("information", "informational", note)]),
        }
    else:
        note = f"rejected and quarantined: {result.detail}"
        where = f"Bundle.{result.position}"
        response = {
            "status": "400 Bad Request",
            "outcome": operation_outcome([issue("error", "processing", note, where)]),
        }
    return {"response": response}


def response_bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def body_doc(*types: str) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for a route that reads its body itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "object"}} for t in types},
        }
    }


ERROR_DOCS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {FHIR_JSON: {}}}
    for code, text in (
        (400, "Invalid request or resource (OperationOutcome)"),
        (401, "No or invalid bearer token (OperationOutcome)"),
        (403, "The token lacks the scope (OperationOutcome)"),
        (413, "Body over the size limit (OperationOutcome)"),
        (415, "Wrong Content-Type (OperationOutcome)"),
    )
}
