"""One Observation: ``POST /fhir/Observation`` (create) and ``GET`` read and vread."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from medsleep.fhir.outcome import issue, operation_outcome
from medsleep.ingest.request import ingest_request
from medsleep.ingest.sources import InputRecord
from medsleep.server.body import read_body, require_media_type
from medsleep.server.deps import Base, Ctx, ReadToken, Store, WriteToken
from medsleep.server.fhir_http import (
    FHIR_JSON,
    JSON_TYPES,
    FhirError,
    FhirResponse,
    body_doc,
    location,
)
from medsleep.server.hot_store import read_observation

router = APIRouter(prefix="/fhir/Observation", tags=["fhir"])


@router.post(
    "", summary="Create one Observation", status_code=201, openapi_extra=body_doc(*JSON_TYPES)
)
async def create_observation(request: Request, ctx: Ctx, base: Base, token: WriteToken) -> Response:
    require_media_type(request, JSON_TYPES)
    settings = ctx.settings
    body = await read_body(request, settings.max_body_bytes)
    _check_resource_type(body)
    record = InputRecord("http", "body", body, nbytes=len(body))
    result = await ctx.run(
        lambda: ingest_request(
            ctx.store(),
            [record],
            source=f"HTTP POST /fhir/Observation ({token.name})",
            actor=f"http:{token.name}",
            options=settings.parse_options,
            clock=ctx.clock,
            per_entry=True,
        )
    )
    entry = result.entries[0]
    headers = {"X-Ingest-Batch": str(result.report.batch_id)}
    if entry.outcome == "quarantined":
        raise FhirError(400, "processing", f"rejected and quarantined: {entry.detail}")
    if entry.outcome == "skipped":
        note = f"accepted but not stored: {entry.detail}"
        outcome = operation_outcome([issue("information", "informational", note)])
        return FhirResponse(outcome, 200, headers)
    where = location(entry.resource_key, entry.version)
    if where is not None:
        headers["Location"] = f"{base}/{where}"
    headers["ETag"] = f'W/"{entry.version}"'
    status = 201 if entry.outcome == "created" else 200
    return _created(request, body, status, headers)


@router.get("/{rid}", summary="Read an Observation")
async def read(rid: str, store: Store, _token: ReadToken) -> FhirResponse:
    return await _read(store, rid, None)


@router.get("/{rid}/_history/{vid}", summary="Read one version")
async def vread(rid: str, vid: str, store: Store, _token: ReadToken) -> FhirResponse:
    return await _read(store, rid, vid)


def _check_resource_type(body: bytes) -> None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # not JSON: the pipeline quarantines it, as the CLI would
    if isinstance(document, dict) and document.get("resourceType") not in (None, "Observation"):
        raise FhirError(
            400, "invalid", f"this endpoint takes Observations, not {document['resourceType']!r}"
        )


def _created(request: Request, body: bytes, status: int, headers: dict[str, str]) -> Response:
    prefer = request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return Response(status_code=status, headers=headers)
    if "return=OperationOutcome" in prefer:
        note = "created" if status == 201 else "already stored; nothing changed"
        outcome = operation_outcome([issue("information", "informational", note)])
        return FhirResponse(outcome, status, headers)
    return Response(body, status, headers, media_type=FHIR_JSON)


async def _read(store: Engine, rid: str, version: str | None) -> FhirResponse:
    found = await run_in_threadpool(read_observation, store, rid, version)
    if found.status == "found":
        return FhirResponse(orjson.loads(found.resource_json or "{}"))
    if found.status == "gone":
        raise FhirError(410, "deleted", f"Observation/{rid} was retracted or superseded")
    if found.status == "archived":
        raise FhirError(404, "not-found", f"Observation/{rid} was consolidated into the archive")
    raise FhirError(404, "not-found", f"no Observation/{rid} in the store")
