"""Every error the server answers is an OperationOutcome: FHIR errors, HTTP errors, invalid
requests, an unreachable store, and anything unexpected (logged, never shown)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from medsleep.errors import StoreUnavailableError
from medsleep.fhir.outcome import issue
from medsleep.server.fhir_http import FhirError, error_response

log = logging.getLogger(__name__)


async def _fhir_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
    headers = dict(exc.headers or {})
    return error_response(FhirError(exc.status_code, code, str(exc.detail), headers=headers))


async def _invalid(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        issue("error", "invalid", str(e.get("msg")), ".".join(map(str, e.get("loc", ()))))
        for e in exc.errors()
    ]
    return error_response(FhirError(400, "invalid", "invalid request", issues=problems))


async def _unavailable(_request: Request, exc: Exception) -> Response:
    log.warning("store unavailable: %s", type(exc).__name__)
    return error_response(FhirError(503, "transient", "the store is unavailable; retry"))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unexpected %s", type(exc).__name__, exc_info=exc)
    return error_response(FhirError(500, "exception", "internal error; see the server log"))


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(StoreUnavailableError, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
