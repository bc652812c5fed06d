"""Commands of the serve room: the HTTP server and its bearer tokens.

Settings are read here, at the edge (options and their environment variables), and handed to
``medsleep.server.app.create_app`` whole. With ``--workers N`` uvicorn starts N processes that each
import ``worker_app``; the settings travel to them in one environment variable.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from medsleep.cli.common import (
    DEFAULT_ARCHIVE,
    DEFAULT_TOKENS,
    EXIT_FAILURE,
    ArchiveOption,
    DbOption,
    TokensOption,
    app,
    audit_key,
    db_url,
    err,
    fail,
    open_db,
)
from medsleep.store.defaults import DEFAULT_DB_URL

if TYPE_CHECKING:
    from fastapi import FastAPI

    from medsleep.auth.tokens import TokenRegistry
    from medsleep.server.context import ServerSettings

_WORKER_CONFIG = "MEDSLEEP_SERVE_CONFIG"  # parent -> uvicorn worker processes
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _settings(config: dict[str, Any]) -> ServerSettings:
    from medsleep.ingest.parsing import ParseOptions
    from medsleep.server.context import ServerSettings

    zone = config.get("default_tz")
    try:
        tz = ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise typer.BadParameter(f"unknown time zone {zone!r}", param_hint="--default-tz") from exc
    return ServerSettings(
        db_url=config["db"],
        max_body_bytes=int(config["max_body_mb"] * 2**20),
        max_ndjson_bytes=int(config["max_ndjson_mb"] * 2**20),
        max_ingests_per_client=int(config.get("max_ingests_per_client", 2)),
        header_timeout_s=float(config.get("header_timeout", 10.0)),
        body_timeout_s=float(config.get("body_timeout", 30.0)),
        export_dir=Path(config["export_dir"]) if config.get("export_dir") else None,
        archive_root=Path(config["archive"]) if config.get("archive") else None,
        audit_key=audit_key(),
        parse_options=ParseOptions(
            strict=config["strict"], fhir_version=config["fhir_version"], default_tz=tz
        ),
    )


def _registry(config: dict[str, Any]) -> TokenRegistry:
    from medsleep.auth.tokens import TokenRegistry, parse_token_list

    return TokenRegistry(Path(config["tokens"]), parse_token_list(config["token_list"]))


def _app(config: dict[str, Any], registry: TokenRegistry | None = None) -> FastAPI:
    from medsleep.server.app import create_app

    return create_app(_settings(config), registry or _registry(config))


def worker_app() -> FastAPI:
    """The application of one uvicorn worker process (``--workers N``)."""
    logging.basicConfig(
        level=os.environ.get("MEDSLEEP_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return _app(json.loads(os.environ[_WORKER_CONFIG]))


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    export_dir: Annotated[
        Path,
        typer.Option(
            "--export-dir",
            envvar="MEDSLEEP_EXPORT_DIR",
            help="Folder for Bulk Data $export jobs (owner-only). Env: MEDSLEEP_EXPORT_DIR.",
        ),
    ] = Path("medsleep-exports"),
    tokens: TokensOption = Path(DEFAULT_TOKENS),
    token_list: Annotated[
        str,
        typer.Option(
            "--token-list",
            envvar="MEDSLEEP_TOKENS",
            help="More tokens as NAME:SHA256[:read+write],... Env: MEDSLEEP_TOKENS.",
        ),
    ] = "",
    workers: Annotated[int, typer.Option("--workers", min=1, help="Server processes.")] = 1,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest JSON body or NDJSON line.")
    ] = 16.0,
    max_ndjson_mb: Annotated[
        float, typer.Option("--max-ndjson-mb", min=0.001, help="Largest $ingest stream.")
    ] = 1024.0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Validate each whole resource with fhir.resources.")
    ] = False,
    fhir_version: Annotated[str, typer.Option("--fhir-version", help="R4, R4B or R5.")] = "R4",
    default_tz: Annotated[
        str | None, typer.Option("--default-tz", help="IANA zone for times without one.")
    ] = None,
    max_ingests_per_client: Annotated[
        int,
        typer.Option(
            "--max-ingests-per-client", min=1, help="Ingest slots (of 8) one token may hold."
        ),
    ] = 2,
    header_timeout: Annotated[
        float,
        typer.Option("--header-timeout", min=0.01, help="Seconds for a request's headers."),
    ] = 10.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            "--body-timeout", min=0.01, help="Seconds a request body may stall (then 408)."
        ),
    ] = 30.0,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log each request line.")
    ] = True,
) -> None:
    """Serve FHIR ingest and hot-store search over HTTP (FastAPI + uvicorn)."""
    import uvicorn

    from medsleep.auth.tokens import TokenError
    from medsleep.server.app import HTTP_PROTOCOL

    if fhir_version not in ("R4", "R4B", "R5"):
        raise typer.BadParameter("must be R4, R4B or R5", param_hint="--fhir-version")
    config: dict[str, Any] = {
        "db": db_url(db),
        "tokens": str(tokens),
        "token_list": token_list,
        "max_body_mb": max_body_mb,
        "max_ndjson_mb": max_ndjson_mb,
        "strict": strict,
        "fhir_version": fhir_version,
        "default_tz": default_tz,
        "max_ingests_per_client": max_ingests_per_client,
        "header_timeout": header_timeout,
        "body_timeout": body_timeout,
        "export_dir": str(export_dir.resolve()),
        "archive": str(archive.resolve()),
    }
    registry = _registry(config)
    if not len(registry):
        raise TokenError(f"no tokens in {tokens} or MEDSLEEP_TOKENS: run medsleep token add NAME")
    application = _app(config, registry)  # checks every setting before anything listens
    open_db(db).dispose()  # create or upgrade the schema once, before any worker starts
    if host not in _LOOPBACK:
        err.print(
            f"serving on {host}: put a TLS-terminating proxy in front; "
            "bearer tokens must not travel in clear"
        )
    logging.getLogger("medsleep").setLevel(log_level.upper())
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level.lower(),
        "access_log": access_log,
        "server_header": False,
        "http": HTTP_PROTOCOL,
    }
    try:
        if workers == 1:
            uvicorn.run(application, **options)
            return
        os.environ[_WORKER_CONFIG] = json.dumps(config)
        os.environ.setdefault("MEDSLEEP_LOG_LEVEL", log_level.upper())
        uvicorn.run("medsleep.cli.server:worker_app", factory=True, workers=workers, **options)
    except SystemExit as exc:
        if exc.code in (None, 0):
            raise
        # uvicorn exits 3 when it cannot listen, which is medsleep's "ingest quarantined"
        fail(f"cannot serve on {host}:{port} (is the port in use? see the log above)", EXIT_FAILURE)
