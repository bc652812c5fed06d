"""What a source yields: one resource as read, before any FHIR checks."""

from __future__ import annotations

from typing import Any, NamedTuple


class InputRecord(NamedTuple):
    """One resource as read, before any FHIR checks (a NamedTuple: cheap to send to workers)."""

    source: str
    position: str
    raw: bytes
    resource: dict[str, Any] | None = None  # already parsed (Bundle entries)
    error: str | None = None  # the record is not JSON at all, or its file cannot be read
    full_url: str | None = None
    subject_target: str | None = None  # a urn:uuid subject resolved inside its Bundle
    nbytes: int = 0
