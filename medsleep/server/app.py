"""HTTP ingest and hot-store search speaking FHIR (FastAPI).

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

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from medsleep import __version__
from medsleep.auth.tokens import Token, TokenRegistry
from medsleep.errors import StoreUnavailableError
from medsleep.ingest.request import ingest_request
from medsleep.ingest.sources import InputRecord
from medsleep.server.body import (
    BodyTooLargeError,
    blocking_chunks,
    declared_length,
    ndjson_records,
    read_body,
    require_media_type,
    too_large,
)
from medsleep.server.bundle import post_bundle
from medsleep.server.context import Context, ServerSettings
from medsleep.server.fhir_http import (
    FHIR_JSON,
    JSON_TYPES,
    NDJSON_TYPES,
    FhirError,
    FhirResponse,
    capability_statement,
    error_response,
    issue,
    location,
    operation_outcome,
)
from medsleep.server.search import parse_search, read_observation, search_observations
from medsleep.store.engine import open_store
from medsleep.timefmt import iso, wall_clock_ms

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="A medsleep token (medsleep token add NAME)")


def _unauthorised(diagnostics: str) -> FhirError:
    return FhirError(
        401, "login", diagnostics, headers={"WWW-Authenticate": 'Bearer realm="medsleep"'}
    )


def _authorise(ctx: Context, scope: str) -> Callable[..., Awaitable[Token]]:
    async def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Token:
        if credentials is None:
            raise _unauthorised("a bearer token is required (Authorization: Bearer ...)")
        token = ctx.tokens.lookup(credentials.credentials)
        if token is None:
            raise _unauthorised("the bearer token is not valid")
        if not token.allows(scope):
            raise FhirError(403, "forbidden", f"the token {token.name!r} lacks {scope!r} scope")
        return token

    return check


def _fhir_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _body_doc(*types: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "object"}} for t in types},
        }
    }


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {FHIR_JSON: {}}}
    for code, text in (
        (400, "Invalid request or resource (OperationOutcome)"),
        (401, "No or invalid bearer token (OperationOutcome)"),
        (403, "The token lacks the scope (OperationOutcome)"),
        (413, "Body over the size limit (OperationOutcome)"),
        (415, "Wrong Content-Type (OperationOutcome)"),
    )
}


def create_app(
    settings: ServerSettings,
    tokens: TokenRegistry,
    *,
    clock: Callable[[], int] = wall_clock_ms,
) -> FastAPI:
    """The medsleep FHIR service over the store at ``settings.db_url``."""
    ctx = Context(settings, tokens, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.engine = await run_in_threadpool(open_store, settings.db_url)
        ctx.limiter = anyio.CapacityLimiter(settings.max_concurrent_ingests)
        try:
            yield
        finally:
            ctx.engine.dispose()

    app = FastAPI(
        title="medsleep",
        version=__version__,
        summary="FHIR Observation ingest and hot-store search",
        lifespan=lifespan,
        redoc_url=None,
        responses=_ERRORS,
    )
    _add_error_handlers(app)
    writer = Depends(_authorise(ctx, "write"))
    reader = Depends(_authorise(ctx, "read"))

    @app.get("/healthz", tags=["ops"], summary="Liveness and database reachability")
    async def healthz() -> JSONResponse:
        def ping() -> None:
            with ctx.store().connect() as conn:
                conn.execute(text("SELECT 1"))

        await run_in_threadpool(ping)
        return JSONResponse({"status": "ok"})

    @app.get("/fhir/metadata", tags=["fhir"], summary="CapabilityStatement")
    async def metadata(request: Request) -> FhirResponse:
        return FhirResponse(capability_statement(_fhir_base(request), iso(clock()), __version__))

    @app.post(
        "/fhir/Observation",
        tags=["fhir"],
        summary="Create one Observation",
        status_code=201,
        openapi_extra=_body_doc(*JSON_TYPES),
    )
    async def create_observation(request: Request, token: Token = writer) -> Response:
        require_media_type(request, JSON_TYPES)
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
                clock=clock,
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
            headers["Location"] = f"{_fhir_base(request)}/{where}"
        headers["ETag"] = f'W/"{entry.version}"'
        status = 201 if entry.outcome == "created" else 200
        return _created(request, body, status, headers)

    @app.post(
        "/fhir",
        tags=["fhir"],
        summary="A batch or transaction Bundle",
        openapi_extra=_body_doc(*JSON_TYPES),
    )
    async def bundle(request: Request, token: Token = writer) -> FhirResponse:
        require_media_type(request, JSON_TYPES)
        body = await read_body(request, settings.max_body_bytes)
        return await post_bundle(ctx, body, token)

    @app.post(
        "/fhir/$ingest",
        tags=["fhir"],
        summary="Stream NDJSON Observations; answers the ingest counts",
        openapi_extra=_body_doc(*NDJSON_TYPES),
    )
    async def ingest_ndjson(request: Request, token: Token = writer) -> JSONResponse:
        require_media_type(request, NDJSON_TYPES)
        declared = declared_length(request)
        if declared is not None and declared > settings.max_ndjson_bytes:
            raise too_large(
                f"the body is {declared:,} bytes; the limit is {settings.max_ndjson_bytes:,}"
            )
        stream = request.stream()

        def work() -> Any:
            chunks = blocking_chunks(stream)
            records = ndjson_records(
                "http", chunks, settings.max_body_bytes, settings.max_ndjson_bytes
            )
            return ingest_request(
                ctx.store(),
                records,
                source=f"HTTP POST /fhir/$ingest ({token.name})",
                actor=f"http:{token.name}",
                options=settings.parse_options,
                chunk_size=settings.chunk_size,
                clock=clock,
            )

        result = await ctx.run(work)
        report = result.report
        if result.aborted is not None:
            done = (
                f"{report.resources:,} resources before it were ingested in batch "
                f"{report.batch_id} (closed as failed); re-sending is safe, duplicates are "
                "recognised"
            )
            status = 413 if isinstance(result.aborted, BodyTooLargeError) else 400
            code = "too-costly" if status == 413 else "incomplete"
            raise FhirError(status, code, f"{result.aborted}; {done}")
        return JSONResponse(report.as_json(), headers={"X-Ingest-Batch": str(report.batch_id)})

    @app.get("/fhir/Observation", tags=["fhir"], summary="Search the hot store")
    async def search(request: Request, _token: Token = reader) -> FhirResponse:
        params: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            params.setdefault(name, []).append(value)
        found = parse_search(params)
        texts, more = await run_in_threadpool(search_observations, ctx.store(), found)
        base = _fhir_base(request)

        def link(relation: str, offset: int) -> dict[str, str]:
            query = [*found.query, ("_count", str(found.count)), ("_offset", str(offset))]
            return {"relation": relation, "url": f"{base}/Observation?{urlencode(query)}"}

        links = [link("self", found.offset)]
        if more:
            links.append(link("next", found.offset + found.count))
        entries = []
        for raw in texts:
            resource = orjson.loads(raw)
            entry: dict[str, Any] = {"resource": resource, "search": {"mode": "match"}}
            if isinstance(resource.get("id"), str):
                entry["fullUrl"] = f"{base}/Observation/{resource['id']}"
            entries.append(entry)
        bundle = {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}
        return FhirResponse(bundle)

    @app.get("/fhir/Observation/{rid}", tags=["fhir"], summary="Read an Observation")
    async def read(rid: str, _token: Token = reader) -> FhirResponse:
        return await _read(ctx, rid, None)

    @app.get("/fhir/Observation/{rid}/_history/{vid}", tags=["fhir"], summary="Read one version")
    async def vread(rid: str, vid: str, _token: Token = reader) -> FhirResponse:
        return await _read(ctx, rid, vid)

    return app


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


async def _read(ctx: Context, rid: str, version: str | None) -> FhirResponse:
    found = await run_in_threadpool(read_observation, ctx.store(), rid, version)
    if found.status == "found":
        return FhirResponse(orjson.loads(found.resource_json or "{}"))
    if found.status == "gone":
        raise FhirError(410, "deleted", f"Observation/{rid} was retracted or superseded")
    if found.status == "archived":
        raise FhirError(404, "not-found", f"Observation/{rid} was consolidated into the archive")
    raise FhirError(404, "not-found", f"no Observation/{rid} in the store")


def _add_error_handlers(app: FastAPI) -> None:
    async def fhir_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FhirError)
        return error_response(exc)

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        headers = dict(exc.headers or {})
        error = FhirError(exc.status_code, code, str(exc.detail), headers=headers)
        return error_response(error)

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            issue("error", "invalid", str(e.get("msg")), ".".join(map(str, e.get("loc", ()))))
            for e in exc.errors()
        ]
        return error_response(FhirError(400, "invalid", "invalid request", issues=problems))

    async def unavailable(_request: Request, exc: Exception) -> Response:
        log.warning("store unavailable: %s", type(exc).__name__)
        return error_response(FhirError(503, "transient", "the store is unavailable; retry"))

    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.error("unexpected %s", type(exc).__name__, exc_info=exc)
        return error_response(FhirError(500, "exception", "internal error; see the server log"))

    app.add_exception_handler(FhirError, fhir_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(OperationalError, unavailable)
    app.add_exception_handler(StoreUnavailableError, unavailable)
    app.add_exception_handler(Exception, unexpected)
