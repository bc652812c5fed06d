"""uvicorn's h11 protocol with a deadline for request headers.

uvicorn times out idle keep-alive connections, but not a client that opens a connection and
sends its headers slowly or never finishes them: each such connection stays open for good.
Here the headers of every request must arrive within ``header_timeout`` seconds of its first
byte (or of the connection); otherwise the server answers 408 and closes the connection.
The timeout comes from the application's lifespan state (``create_app`` puts it there), so
``medsleep serve`` and its ``--workers`` processes get it the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_KEY = "medsleep.header_timeout"
DEFAULT_HEADER_TIMEOUT = 10.0
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
    b"connection: close\r\ncontent-length: 37\r\n\r\nthe request headers came too slowly\r\n"
)


class TimedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        state = self.app_state if isinstance(self.app_state, dict) else {}
        self.header_timeout = float(state.get(HEADER_TIMEOUT_KEY, DEFAULT_HEADER_TIMEOUT))
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._arm()
        super().data_received(data)
        if not self._between_requests():
            self._disarm()  # the headers are in: the body has its own timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._between_requests() and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()
