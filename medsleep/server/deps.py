"""FastAPI dependencies the routes declare: the shared context, the store, the token's scope.

    async def search(store: Store, _token: ReadToken) -> ...

``create_app`` puts the :class:`Context` on ``app.state``; everything here reads it from there.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from medsleep.auth.tokens import Token
from medsleep.server.context import Context
from medsleep.server.fhir_http import FhirError

_bearer = HTTPBearer(auto_error=False, description="A medsleep token (medsleep token add NAME)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def context(request: Request) -> Context:
    return cast(Context, request.app.state.context)


Ctx = Annotated[Context, Depends(context)]


def store(ctx: Ctx) -> Engine:
    return ctx.store()


Store = Annotated[Engine, Depends(store)]


def fhir_base(request: Request) -> str:
    """The absolute FHIR base URL of this server, as the client reached it."""
    return str(request.base_url).rstrip("/") + "/fhir"


Base = Annotated[str, Depends(fhir_base)]


def _unauthorised(diagnostics: str) -> FhirError:
    return FhirError(
        401, "login", diagnostics, headers={"WWW-Authenticate": 'Bearer realm="medsleep"'}
    )


def _token(ctx: Context, credentials: HTTPAuthorizationCredentials | None, scope: str) -> Token:
    if credentials is None:
        raise _unauthorised("a bearer token is required (Authorization: Bearer ...)")
    token = ctx.tokens.lookup(credentials.credentials)
    if token is None:
        raise _unauthorised("the bearer token is not valid")
    if not token.allows(scope):
        raise FhirError(403, "forbidden", f"the token {token.name!r} lacks {scope!r} scope")
    return token


async def _writer(ctx: Ctx, credentials: Credentials) -> Token:
    return _token(ctx, credentials, "write")


async def _reader(ctx: Ctx, credentials: Credentials) -> Token:
    return _token(ctx, credentials, "read")


WriteToken = Annotated[Token, Depends(_writer)]
ReadToken = Annotated[Token, Depends(_reader)]


_JSON_FORMATS = ("json", "application/json", "application/fhir+json", "application/json+fhir")


def _wants_only_xml(accept: str) -> bool:
    types = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    xml = any("xml" in t for t in types)
    other = any("json" in t or t in ("*/*", "application/*") for t in types)
    return xml and not other


async def json_only(request: Request) -> None:
    """406 for ``_format=xml`` or an ``Accept`` that only takes XML: medsleep speaks JSON,
    and answering JSON to a client that asked for XML would break it later and less clearly."""
    wanted = request.query_params.get("_format")
    if wanted is not None and wanted.lower() not in _JSON_FORMATS:
        raise FhirError(406, "not-supported", f"_format={wanted!r}: this server speaks JSON only")
    if _wants_only_xml(request.headers.get("accept", "")):
        raise FhirError(406, "not-supported", "this server speaks application/fhir+json only")
