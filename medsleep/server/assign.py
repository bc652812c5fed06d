"""What the server owns when it stores a resource (R4 §3.1.0.1.6, §3.1.0.8): a create gets a
new id whatever the body says, every create or update a new ``meta.versionId`` and
``meta.lastUpdated``. Plain creates and the POST entries of batches and transactions alike."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from medsleep.timefmt import iso


def new_id() -> str:
    return str(uuid.uuid4())


def stamp(resource: dict[str, Any], version: str, now_ms: int) -> None:
    """Set ``meta.versionId`` and ``meta.lastUpdated`` in place (other meta kept)."""
    meta = resource.get("meta")
    resource["meta"] = {
        **(meta if isinstance(meta, dict) else {}),
        "versionId": version,
        "lastUpdated": iso(now_ms),
    }


def stamped(resource: dict[str, Any], version: str, now_ms: int) -> bytes:
    """The resource stamped (see :func:`stamp`), as the JSON text to store."""
    stamp(resource, version, now_ms)
    return orjson.dumps(resource)


def assign_created(resource: dict[str, Any], now_ms: int) -> str:
    """Give a resource being created its server id and first version; returns the id."""
    rid = new_id()
    resource["id"] = rid
    stamp(resource, "1", now_ms)
    return rid
