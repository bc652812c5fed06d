"""``POST /fhir``: a batch Bundle (each entry on its own, rejected entries quarantined) or a
transaction Bundle (all or nothing), answered with a response Bundle, one entry per entry.

Ids as a plain create or update gives them (``server.assign``): a ``POST`` entry's
Observation gets a new server id and ``meta`` whatever its body says; a ``PUT
Observation/{id}`` entry keeps its id, which must be the body's."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from medsleep.auth.tokens import Token
from medsleep.fhir.outcome import issue, operation_outcome
from medsleep.ingest.request import (
    EntryResult,
    TransactionRejectedError,
    ingest_request,
    ingest_transaction,
)
from medsleep.ingest.sources import read_document
from medsleep.server.assign import assign_created
from medsleep.server.body import read_body, require_media_type
from medsleep.server.context import Context
from medsleep.server.deps import Ctx, WriteToken
from medsleep.server.fhir_http import (
    JSON_TYPES,
    FhirError,
    FhirResponse,
    body_doc,
    entry_response,
    response_bundle,
)

WRITE_METHODS = ("POST", "PUT")
router = APIRouter(tags=["fhir"])


@router.post("/fhir", summary="A batch or transaction Bundle", openapi_extra=body_doc(*JSON_TYPES))
async def bundle(request: Request, ctx: Ctx, token: WriteToken) -> FhirResponse:
    require_media_type(request, JSON_TYPES)
    body = await read_body(request, ctx.settings.max_body_bytes, ctx.settings.body_timeout_s)
    return await post_bundle(ctx, body, token)


def _entry_problem(entry: object) -> str | None:
    """Why an entry cannot be processed here, or None."""
    if not isinstance(entry, dict):
        return "entry is not an object"
    request = entry.get("request")
    method = request.get("method") if isinstance(request, dict) else None
    if method is not None and method not in WRITE_METHODS:
        return f"request.method {method!r} is not supported (POST or PUT a resource)"
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        return "entry has no resource"
    url = request.get("url") if isinstance(request, dict) else None
    if method == "PUT" and resource.get("resourceType") == "Observation":
        wanted = f"Observation/{resource.get('id')}"
        if not isinstance(url, str) or url.split("?")[0].strip("/") != wanted:
            return f"request.url {url!r} of a PUT must be {wanted!r}, the resource's id"
    return None


def _assign_ids(entries: list[Any], problems: dict[int, str], now_ms: int) -> None:
    """Server ids and meta for the Observations of POST entries (in place)."""
    for index, entry in enumerate(entries):
        if index in problems:
            continue
        request, resource = entry.get("request"), entry["resource"]
        method = request.get("method") if isinstance(request, dict) else None
        if method == "POST" and resource.get("resourceType") == "Observation":
            assign_created(resource, now_ms)


def _bundle_entries(body: bytes) -> tuple[dict[str, Any], str, list[Any]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FhirError(400, "structure", f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        raise FhirError(400, "invalid", "POST /fhir takes a Bundle")
    kind = document.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError(
            400,
            "invalid",
            f"Bundle.type {kind!r}: POST /fhir takes batch or transaction Bundles "
            "(send other Bundles to $ingest as NDJSON lines)",
        )
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(400, "structure", "Bundle.entry is not a list")
    return document, str(kind), entries


def _rejection(rejected: list[tuple[int, str]]) -> FhirError:
    issues = [
        issue("error", "processing", message, f"Bundle.entry[{index}]")
        for index, message in rejected
    ]
    summary = f"transaction rejected, nothing written: {len(rejected)} entries cannot be stored"
    return FhirError(
        400, "processing", summary, issues=[issue("error", "processing", summary), *issues]
    )


async def post_bundle(ctx: Context, body: bytes, token: Token) -> FhirResponse:
    document, kind, entries = _bundle_entries(body)
    problems = {i: p for i, entry in enumerate(entries) if (p := _entry_problem(entry))}
    _assign_ids(entries, problems, ctx.clock())
    source = f"HTTP POST /fhir {kind} ({token.name})"
    # The pipeline's Bundle reader: fullUrl targets, urn:uuid subjects, positions "entry[i]".
    text = orjson.dumps(document)
    records = [r for r in read_document(source, text, "") if _index(r.position) not in problems]
    settings = ctx.settings
    if kind == "transaction":
        if problems:
            raise _rejection(sorted(problems.items()))
        try:
            result = await ctx.run(
                lambda: ingest_transaction(
                    ctx.store(),
                    records,
                    source=source,
                    actor=f"http:{token.name}",
                    options=settings.parse_options,
                    clock=ctx.clock,
                ),
                token.name,
            )
        except TransactionRejectedError as exc:
            raise _rejection([(_index(p), m) for p, m in exc.rejected]) from exc
    else:
        result = await ctx.run(
            lambda: ingest_request(
                ctx.store(),
                records,
                source=source,
                actor=f"http:{token.name}",
                options=settings.parse_options,
                chunk_size=max(1, len(records)),
                clock=ctx.clock,
                per_entry=True,
            ),
            token.name,
        )
    by_index: dict[int, EntryResult] = {_index(e.position): e for e in result.entries}
    answers: list[dict[str, Any]] = []
    for index in range(len(entries)):
        if index in by_index:
            answers.append(entry_response(by_index[index]))
        else:
            note = problems.get(index, "entry was not processed")
            outcome = operation_outcome([issue("error", "not-supported", note)])
            answers.append({"response": {"status": "400 Bad Request", "outcome": outcome}})
    headers = {"X-Ingest-Batch": str(result.report.batch_id)}
    return FhirResponse(response_bundle(f"{kind}-response", answers), 200, headers)


def _index(position: str) -> int:
    """The entry index of a position such as ``entry[3]``."""
    return int(position.rsplit("[", 1)[1].rstrip("]"))
