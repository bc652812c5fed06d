"""The FHIR R4 HTTP server: ingest and hot-store search (FastAPI)."""

from medsleep.server.app import HTTP_PROTOCOL, create_app
from medsleep.server.context import ServerSettings

__all__ = ["HTTP_PROTOCOL", "ServerSettings", "create_app"]
