"""``POST /fhir/$ingest``: an NDJSON stream, ingested while it arrives; answers the counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from medsleep.ingest.request import ingest_request
from medsleep.server.body import (
    BodyTimeoutError,
    BodyTooLargeError,
    blocking_chunks,
    declared_length,
    ndjson_records,
    require_media_type,
    too_large,
)
from medsleep.server.deps import Ctx, WriteToken
from medsleep.server.fhir_http import NDJSON_TYPES, FhirError, body_doc

router = APIRouter(tags=["fhir"])


@router.post(
    "/fhir/$ingest",
    summary="Stream NDJSON Observations; answers the ingest counts",
    openapi_extra=body_doc(*NDJSON_TYPES),
)
async def ingest_ndjson(request: Request, ctx: Ctx, token: WriteToken) -> JSONResponse:
    settings = ctx.settings
    require_media_type(request, NDJSON_TYPES)
    declared = declared_length(request)
    if declared is not None and declared > settings.max_ndjson_bytes:
        raise too_large(
            f"the body is {declared:,} bytes; the limit is {settings.max_ndjson_bytes:,}"
        )
    stream = request.stream()

    def work() -> Any:
        chunks = blocking_chunks(stream, settings.body_timeout_s)
        records = ndjson_records("http", chunks, settings.max_body_bytes, settings.max_ndjson_bytes)
        return ingest_request(
            ctx.store(),
            records,
            source=f"HTTP POST /fhir/$ingest ({token.name})",
            actor=f"http:{token.name}",
            options=settings.parse_options,
            chunk_size=settings.chunk_size,
            clock=ctx.clock,
        )

    result = await ctx.run(work, token.name)
    report = result.report
    if result.aborted is not None:
        done = (
            f"{report.resources:,} resources before it were ingested in batch "
            f"{report.batch_id} (closed as failed); re-sending is safe, duplicates are "
            "recognised"
        )
        status, code = 400, "incomplete"
        if isinstance(result.aborted, BodyTooLargeError):
            status, code = 413, "too-costly"
        elif isinstance(result.aborted, BodyTimeoutError):
            status, code = 408, "timeout"
        raise FhirError(status, code, f"{result.aborted}; {done}")
    return JSONResponse(report.as_json(), headers={"X-Ingest-Batch": str(report.batch_id)})
