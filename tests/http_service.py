"""A real medsleep FHIR server for tests: uvicorn in a thread on a free 127.0.0.1 port, real
HTTP clients with the tokens of three callers (read+write, read only, unknown)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from medsleep.auth.tokens import TokenRegistry, add_token
from medsleep.server.app import HTTP_PROTOCOL, create_app
from medsleep.server.context import ServerSettings
from medsleep.store.engine import open_store

FHIR_JSON = {"Content-Type": "application/fhir+json"}
NDJSON = {"Content-Type": "application/fhir+ndjson"}


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", http=HTTP_PROTOCOL)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@dataclass
class Service:
    base: str
    engine: Engine
    tokens: dict[str, str]  # name -> token: writer (read+write), reader (read), nobody

    def client(self, who: str | None = "writer") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


@contextmanager
def service(tmp_path: Path, db_url: str, **settings: Any) -> Iterator[Service]:
    path = tmp_path / "tokens.toml"
    tokens = {
        "writer": add_token(path, "writer"),
        "reader": add_token(path, "reader", ["read"]),
        "nobody": "msk_not-a-registered-token",
    }
    app = create_app(ServerSettings(db_url=db_url, **settings), TokenRegistry(path))
    engine = open_store(db_url)
    try:
        with serving(app) as base:
            yield Service(base, engine, tokens)
    finally:
        engine.dispose()


def outcome_issues(response: httpx.Response) -> list[dict[str, Any]]:
    """The issues of an OperationOutcome answer, after checking its shape."""
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"], body
    for found in body["issue"]:
        assert found["severity"] in ("fatal", "error", "warning", "information")
        assert isinstance(found["code"], str)
        assert found["code"]
    issues: list[dict[str, Any]] = body["issue"]
    return issues
