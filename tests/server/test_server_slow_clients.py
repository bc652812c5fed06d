"""Slow and stalled clients, with real sockets on 127.0.0.1 (issue 12): headers that never
end and bodies that stop short get 408 instead of holding a connection for good, and the
stalled ``$ingest`` streams of one client cannot take every ingest slot from the others."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from medsleep.auth.tokens import add_token
from tests.helpers import observation, readings
from tests.http_service import FHIR_JSON, Service, service

WAIT = 30.0  # how long the test waits for an answer: far above the server's timeouts here


@contextmanager
def raw_connection(svc: Service) -> Iterator[socket.socket]:
    where = urlsplit(svc.base)
    sock = socket.create_connection((where.hostname, where.port), timeout=WAIT)
    try:
        yield sock
    finally:
        sock.close()


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_headers_that_never_end_get_408(tmp_path: Path, sqlite_url: str) -> None:
    with service(tmp_path, sqlite_url, header_timeout_s=0.5) as svc, raw_connection(svc) as sock:
        sock.sendall(b"POST /fhir/$ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
        assert answer(sock).startswith(b"HTTP/1.1 408 ")


def test_a_connection_that_sends_nothing_is_closed(tmp_path: Path, sqlite_url: str) -> None:
    with service(tmp_path, sqlite_url, header_timeout_s=0.5) as svc, raw_connection(svc) as sock:
        assert answer(sock).startswith(b"HTTP/1.1 408 ")


def test_a_body_that_stops_short_gets_408(tmp_path: Path, sqlite_url: str) -> None:
    """10 of 1,000 declared bytes, then silence: answered, and nothing stored."""
    with service(tmp_path, sqlite_url, body_timeout_s=0.5) as svc:
        for path, kind in (("/fhir/Observation", "fhir+json"), ("/fhir/$ingest", "fhir+ndjson")):
            with raw_connection(svc) as sock:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {svc.tokens['writer']}\r\n"
                    f"Content-Type: application/{kind}\r\nContent-Length: 1000\r\n\r\n".encode()
                    + b'{"resourc'
                )
                received = answer(sock)
            assert received.startswith(b"HTTP/1.1 408 "), received[:200]
            assert b"stalled" in received
        assert readings(svc.engine) == []


def test_stalled_streams_of_one_client_leave_slots_for_the_others(
    tmp_path: Path, sqlite_url: str
) -> None:
    """10 stalled $ingest streams of one token, 4 slots, a fair share of 2: another client's
    POST is answered at once instead of waiting for the stalled ones to time out."""
    settings = {"max_concurrent_ingests": 4, "max_ingests_per_client": 2, "body_timeout_s": 60}
    with service(tmp_path, sqlite_url, **settings) as svc, ExitStack() as stalled:
        other = add_token(tmp_path / "tokens.toml", "ward-8")
        head = (
            "POST /fhir/$ingest HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {svc.tokens['writer']}\r\n"
            "Content-Type: application/fhir+ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(10):
            sock = stalled.enter_context(raw_connection(svc))
            sock.sendall(head.encode() + b'5\r\n{"res\r\n')
        with svc.client(None) as client:
            response = client.post(
                "/fhir/Observation",
                json=observation("o1"),
                headers={**FHIR_JSON, "Authorization": f"Bearer {other}"},
                timeout=WAIT,
            )
        assert response.status_code == 201, response.text
