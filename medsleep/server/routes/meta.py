"""``GET /healthz`` and ``GET /fhir/metadata``: no token needed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from medsleep import __version__
from medsleep.server.capability import capability_statement
from medsleep.server.deps import Base, Ctx
from medsleep.server.fhir_http import FhirResponse
from medsleep.timefmt import iso

router = APIRouter()


@router.get("/healthz", tags=["ops"], summary="Liveness and database reachability")
async def healthz(ctx: Ctx) -> JSONResponse:
    def ping() -> None:
        with ctx.store().connect() as conn:
            conn.execute(text("SELECT 1"))

    await run_in_threadpool(ping)
    return JSONResponse({"status": "ok"})


@router.get("/fhir/metadata", tags=["fhir"], summary="CapabilityStatement")
async def metadata(ctx: Ctx, base: Base) -> FhirResponse:
    bulk = ctx.exports is not None and ctx.settings.archive_root is not None
    return FhirResponse(capability_statement(base, iso(ctx.clock()), __version__, bulk=bulk))
