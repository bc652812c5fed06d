"""The FHIR R4 HTTP server: ingest and hot-store search (FastAPI)."""

from medsleep.server.app import create_app
from medsleep.server.context import ServerSettings

__all__ = ["ServerSettings", "create_app"]
