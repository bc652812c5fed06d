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
