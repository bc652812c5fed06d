"""What the HTTP handlers share: the server's settings, tokens, engine and ingest limiter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import Engine

from medsleep.auth.tokens import TokenRegistry
from medsleep.errors import StoreUnavailableError
from medsleep.ingest.parsing import ParseOptions
from medsleep.ingest.request import DEFAULT_CHUNK
from medsleep.server.export_jobs import ExportJobs


@dataclass(frozen=True)
class ServerSettings:
    """What ``medsleep serve`` reads from its options and environment, passed in whole."""

    db_url: str
    max_body_bytes: int = 16 * 2**20  # a JSON resource or Bundle, and one NDJSON line
    max_ndjson_bytes: int = 2**30  # one $ingest stream
    chunk_size: int = DEFAULT_CHUNK
    max_concurrent_ingests: int = 8
    # One client (token) holds at most this many of the ingest slots, so that stalled or slow
    # streams of one client cannot keep everyone else out.
    max_ingests_per_client: int = 2
    header_timeout_s: float = 10.0  # the request line and headers, from their first byte
    body_timeout_s: float = 30.0  # between two pieces of a request body
    parse_options: ParseOptions = field(default_factory=ParseOptions)
    # Bulk Data $export: where job folders go, and the archive behind exported summaries
    # (both needed, or $export answers 501).
    export_dir: Path | None = None
    archive_root: Path | None = None
    # The audit chain's HMAC key (read at the edge, never stored): events this server appends
    # are keyed like the CLI's, so `medsleep audit verify --key` checks them too.
    audit_key: bytes | None = field(default=None, repr=False)


@dataclass
class Context:
    """What the handlers share: settings, tokens, the engine and the ingest limiter."""

    settings: ServerSettings
    tokens: TokenRegistry
    clock: Callable[[], int]
    engine: Engine | None = None
    limiter: anyio.CapacityLimiter | None = None
    shares: dict[str, anyio.CapacityLimiter] = field(default_factory=dict)
    exports: ExportJobs | None = None

    def store(self) -> Engine:
        if self.engine is None:
            raise StoreUnavailableError("the store is not open")
        return self.engine

    async def run(self, work: Callable[[], Any], client: str) -> Any:
        """Run blocking ingest work in a worker thread: at most ``max_concurrent_ingests``
        requests at a time, and at most ``max_ingests_per_client`` of them from ``client``
        (a client over its share waits without holding one of the shared slots)."""
        share = self.shares.get(client)
        if share is None:
            share = self.shares[client] = anyio.CapacityLimiter(
                self.settings.max_ingests_per_client
            )
        async with share:
            return await anyio.to_thread.run_sync(work, limiter=self.limiter)
