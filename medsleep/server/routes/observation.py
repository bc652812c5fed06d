"""One Observation: create (``POST``, conditional with ``If-None-Exist``), update-or-create
(``PUT`` with the client's id, ``If-Match`` honoured), delete (retracts), read and vread.

The server owns ids and versions as R4 says (§3.1.0.1.6, §3.1.0.8): a create gets a new id
whatever the body says, and every create or update a new integer ``meta.versionId`` and
``meta.lastUpdated``; the stored text is the resource with those set.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from medsleep.auth.tokens import Token
from medsleep.fhir.datatypes import ID
from medsleep.fhir.outcome import issue, operation_outcome
from medsleep.ingest.request import EntryResult, ingest_request
from medsleep.ingest.sources import InputRecord
from medsleep.server.assign import assign_created
from medsleep.server.assign import stamped as stamped_body
from medsleep.server.body import read_body, require_media_type
from medsleep.server.context import Context
from medsleep.server.deps import Base, Ctx, ReadToken, Store, WriteToken
from medsleep.server.fhir_http import JSON_TYPES, FhirError, FhirResponse, body_doc
from medsleep.server.hot_store import (
    StoredObservation,
    read_observation,
    search_observations,
    versions_of,
)
from medsleep.server.present import resource_of, version_headers
from medsleep.server.search_params import parse_search

router = APIRouter(prefix="/fhir/Observation", tags=["fhir"])


@router.post(
    "", summary="Create one Observation", status_code=201, openapi_extra=body_doc(*JSON_TYPES)
)
async def create_observation(request: Request, ctx: Ctx, base: Base, token: WriteToken) -> Response:
    require_media_type(request, JSON_TYPES)
    body = await read_body(request, ctx.settings.max_body_bytes, ctx.settings.body_timeout_s)
    resource = _observation_body(body)
    condition = _create_condition(request)
    if resource is not None and condition is not None:
        existing = await _existing(ctx.store(), condition)
        if existing is not None:
            return _answer(request, base, existing, 200, {})
    if resource is not None:
        rid = assign_created(resource, ctx.clock())
        body = orjson.dumps(resource)
    else:
        rid = ""  # not JSON: the pipeline quarantines it with its reason, as the CLI would
    entry, batch = await _ingest(ctx, token, body, f"POST /fhir/Observation ({token.name})")
    return _outcome(request, base, entry, batch, body, rid, created=True)


@router.put("/{rid}", summary="Update or create with this id", openapi_extra=body_doc(*JSON_TYPES))
async def update_observation(
    rid: str, request: Request, ctx: Ctx, base: Base, token: WriteToken
) -> Response:
    require_media_type(request, JSON_TYPES)
    body = await read_body(request, ctx.settings.max_body_bytes, ctx.settings.body_timeout_s)
    resource = _observation_body(body)
    if resource is None:
        raise FhirError(400, "structure", "the body is not an Observation as JSON")
    if not ID.fullmatch(rid) or resource.get("id") != rid:
        raise FhirError(400, "invalid", f"the body's id must be {rid!r}, the id in the URL")
    key = f"Observation/{rid}"
    source = f"PUT /fhir/{key} ({token.name})"

    def work() -> tuple[EntryResult, int, bytes, bool]:
        versions = versions_of(ctx.store(), key)
        _check_if_match(request, versions.current)
        stamped = stamped_body(resource, versions.next_version(), ctx.clock())
        entry, batch = _ingest_now(ctx, token, stamped, source)
        return entry, batch, stamped, not versions.seen

    entry, batch, stamped, fresh = await ctx.run(work, token.name)
    if entry.outcome == "duplicate":  # another update took this version number first
        raise FhirError(409, "conflict", f"{key} was updated concurrently; read it and retry")
    return _outcome(request, base, entry, batch, stamped, rid, created=fresh)


@router.delete("/{rid}", summary="Delete (retract) an Observation", status_code=204)
async def delete_observation(rid: str, request: Request, ctx: Ctx, token: WriteToken) -> Response:
    key = f"Observation/{rid}"

    def work() -> bool:
        versions = versions_of(ctx.store(), key)
        _check_if_match(request, versions.current)
        found = read_observation(ctx.store(), rid)
        if found.stored is None:
            return bool(versions.seen)  # already deleted or archived: deleting again is fine
        resource = orjson.loads(found.stored.resource_json)
        resource["status"] = "entered-in-error"  # medsleep's retraction: kept for audit
        stamped = stamped_body(resource, versions.next_version(), ctx.clock())
        _ingest_now(ctx, token, stamped, f"DELETE /fhir/{key} ({token.name})")
        return True

    if not await ctx.run(work, token.name):
        raise FhirError(404, "not-found", f"no {key} in the store")
    return Response(status_code=204)


@router.get("/{rid}", summary="Read an Observation")
async def read(rid: str, store: Store, _token: ReadToken) -> FhirResponse:
    return await _read(store, rid, None)


@router.get("/{rid}/_history/{vid}", summary="Read one version")
async def vread(rid: str, vid: str, store: Store, _token: ReadToken) -> FhirResponse:
    return await _read(store, rid, vid)


def _observation_body(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, refusing other resource types; None when it is not JSON."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    if document.get("resourceType") not in (None, "Observation"):
        raise FhirError(
            400, "invalid", f"this endpoint takes Observations, not {document['resourceType']!r}"
        )
    return document


def _create_condition(request: Request) -> str | None:
    """The search a conditional create goes by: ``If-None-Exist``, or the query string of
    ``POST Observation?identifier=...`` (how fhirpy's ``get_or_create`` asks), less
    ``_format``/``_pretty``, which say how to answer, not what to match."""
    header = request.headers.get("if-none-exist")
    if header is not None:
        return header
    wanted = [(k, v) for k, v in request.query_params.multi_items() if k not in _ANSWER_PARAMS]
    return urlencode(wanted) if wanted else None


_ANSWER_PARAMS = frozenset({"_format", "_pretty"})


def _check_if_match(request: Request, current: str | None) -> None:
    wanted = request.headers.get("if-match")
    if wanted is None:
        return
    version = wanted.strip().removeprefix("W/").strip('"')
    if version != current:
        raise FhirError(
            412, "conflict", f"If-Match {wanted}: the current version is {current or 'none'}"
        )


async def _existing(store: Engine, condition: str) -> StoredObservation | None:
    """The one hot Observation ``If-None-Exist`` matches, None if none; 412 if several."""
    params = parse_qs(condition, keep_blank_values=True)
    if not params or set(params) & {"_count", "_offset", "_sort", "_summary", "_elements"}:
        raise FhirError(400, "invalid", f"If-None-Exist {condition!r} is not a search")
    search = parse_search(params)
    page = await run_in_threadpool(search_observations, store, search)
    if page.total > 1:
        raise FhirError(412, "duplicate", f"If-None-Exist matches {page.total} Observations")
    return page.found[0] if page.found else None


def _ingest_now(ctx: Context, token: Token, body: bytes, source: str) -> tuple[EntryResult, int]:
    result = ingest_request(
        ctx.store(),
        [InputRecord("http", "body", body, nbytes=len(body))],
        source=f"HTTP {source}",
        actor=f"http:{token.name}",
        options=ctx.settings.parse_options,
        clock=ctx.clock,
        per_entry=True,
    )
    return result.entries[0], result.report.batch_id


async def _ingest(ctx: Context, token: Token, body: bytes, source: str) -> tuple[EntryResult, int]:
    result: tuple[EntryResult, int] = await ctx.run(
        lambda: _ingest_now(ctx, token, body, source), token.name
    )
    return result


def _outcome(
    request: Request,
    base: Base,
    entry: EntryResult,
    batch: int,
    body: bytes,
    rid: str,
    *,
    created: bool,
) -> Response:
    headers = {"X-Ingest-Batch": str(batch)}
    if entry.outcome == "quarantined":
        raise FhirError(400, "processing", f"rejected and quarantined: {entry.detail}")
    if entry.outcome == "skipped":
        note = f"accepted but not stored: {entry.detail}"
        outcome = operation_outcome([issue("information", "informational", note)])
        return FhirResponse(outcome, 200, headers)
    stored = StoredObservation(body.decode(), f"Observation/{rid}", entry.version or "", "", 0)
    return _answer(request, base, stored, 201 if created else 200, headers)


def _answer(
    request: Request, base: str, stored: StoredObservation, status: int, headers: dict[str, str]
) -> Response:
    resource = resource_of(stored)
    where = f"{base}/Observation/{resource['id']}/_history/{stored.version}"
    headers = {**headers, **version_headers(resource), "Location": where}
    prefer = request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return Response(status_code=status, headers=headers)
    if "return=OperationOutcome" in prefer:
        note = "created" if status == 201 else "stored"
        outcome = operation_outcome([issue("information", "informational", note)])
        return FhirResponse(outcome, status, headers)
    return FhirResponse(resource, status, headers)


async def _read(store: Engine, rid: str, version: str | None) -> FhirResponse:
    found = await run_in_threadpool(read_observation, store, rid, version)
    if found.stored is not None:
        resource = resource_of(found.stored)
        return FhirResponse(resource, 200, version_headers(resource))
    if found.status == "gone":
        raise FhirError(410, "deleted", f"Observation/{rid} was deleted, retracted or superseded")
    if found.status == "archived":
        raise FhirError(404, "not-found", f"Observation/{rid} was consolidated into the archive")
    raise FhirError(404, "not-found", f"no Observation/{rid} in the store")
