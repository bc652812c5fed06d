"""The CapabilityStatement (``GET /fhir/metadata``): what this server does, and no more."""

from __future__ import annotations

from typing import Any

from medsleep.fhir.outcome import FHIR_VERSION
from medsleep.server.fhir_http import FHIR_JSON


def capability_statement(base: str, date: str, version: str) -> dict[str, Any]:
    """What this server does, as a FHIR CapabilityStatement (``GET /fhir/metadata``)."""
    search = [
        ("patient", "reference", "Patient id, or Patient/id; comma-separated values mean OR"),
        ("subject", "reference", "Same as patient"),
        (
            "code",
            "token",
            "A reading's code (Observation.code or a component code), code or "
            "system|code; comma-separated values mean OR",
        ),  # fmt: skip
        ("date", "date", "effective time; prefixes eq, ne, gt, ge, lt, le; repeat to AND"),
        ("_count", "number", "Page size (default 100, at most 1000)"),
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "medsleep",
        "kind": "instance",
        "software": {"name": "medsleep", "version": version},
        "implementation": {"description": "medsleep FHIR ingest and hot-store search", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", FHIR_JSON],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Observations are stored as numeric readings; other resource types are "
                    "accepted and skipped. Search and read cover the hot store: readings the "
                    "nightly consolidation collapsed are in the archive, not here."
                ),
                "security": {
                    "description": "Bearer token in the Authorization header on every read "
                    "and write; tokens have read and/or write scope.",
                },
                "resource": [
                    {
                        "type": "Observation",
                        "interaction": [
                            {"code": "create"},
                            {"code": "read"},
                            {"code": "vread"},
                            {"code": "search-type"},
                        ],
                        "versioning": "versioned",
                        "readHistory": False,
                        "updateCreate": False,
                        "searchParam": [
                            {"name": name, "type": kind, "documentation": text}
                            for name, kind, text in search
                        ],
                    }
                ],
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
                "operation": [
                    {
                        "name": "ingest",
                        "definition": "urn:medsleep:OperationDefinition:ingest",
                        "documentation": "POST an application/fhir+ndjson stream of "
                        "Observations (or Bundles, one per line); answers the ingest counts.",
                    }
                ],
            }
        ],
    }
