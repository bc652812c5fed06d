"""HTTP ingest and hot-store search speaking FHIR (FastAPI): the application's wiring.

``create_app(settings, tokens)`` builds the application; ``medsleep serve`` runs it with uvicorn.
Every request but ``/healthz``, ``/fhir/metadata`` and the OpenAPI document needs a bearer
token: ``write`` scope to ingest, ``read`` scope to search. Each ingesting request is one ingest
batch through the same parse, dedupe, quarantine and write steps as ``medsleep ingest``.

    POST /fhir/Observation   one Observation            -> 201 Created + Location
    POST /fhir               a batch/transaction Bundle -> a batch-/transaction-response Bundle
    POST /fhir/$ingest       application/fhir+ndjson    -> the ingest counts (JSON)
    GET  /fhir/Observation?patient=&code=&date=         -> a searchset Bundle
    GET  /fhir/Observation/{id}[/_history/{vid}]        -> the Observation, while it is hot
    GET  /fhir/metadata      the CapabilityStatement;  GET /healthz;  GET /openapi.json
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from medsleep import __version__
from medsleep.audit import keyed_engine
from medsleep.auth.tokens import TokenRegistry
from medsleep.server.context import Context, ServerSettings
from medsleep.server.deps import json_only
from medsleep.server.export_jobs import ExportJobs
from medsleep.server.fhir_http import ERROR_DOCS
from medsleep.server.handlers import add_error_handlers
from medsleep.server.protocol import HEADER_TIMEOUT_KEY
from medsleep.server.routes import bundle, export, meta, ndjson, observation, search
from medsleep.store.engine import open_store
from medsleep.timefmt import wall_clock_ms

# uvicorn's ``http=`` for this app: h11 with a deadline for request headers.
HTTP_PROTOCOL = "medsleep.server.protocol:TimedH11Protocol"


def create_app(
    settings: ServerSettings,
    tokens: TokenRegistry,
    *,
    clock: Callable[[], int] = wall_clock_ms,
) -> FastAPI:
    """The medsleep FHIR service over the store at ``settings.db_url``."""
    ctx = Context(settings, tokens, clock)
    if settings.export_dir is not None:
        ctx.exports = ExportJobs(settings.export_dir)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        engine = await run_in_threadpool(open_store, settings.db_url)
        ctx.engine = keyed_engine(engine, settings.audit_key)
        ctx.limiter = anyio.CapacityLimiter(settings.max_concurrent_ingests)
        try:
            yield {HEADER_TIMEOUT_KEY: settings.header_timeout_s}  # for TimedH11Protocol
        finally:
            ctx.engine.dispose()

    app = FastAPI(
        title="medsleep",
        version=__version__,
        summary="FHIR Observation ingest and hot-store search",
        lifespan=lifespan,
        redoc_url=None,
        responses=ERROR_DOCS,
        dependencies=[Depends(json_only)],
    )
    app.state.context = ctx
    add_error_handlers(app)
    for module in (meta, observation, bundle, ndjson, search, export):
        app.include_router(module.router)
    return app
