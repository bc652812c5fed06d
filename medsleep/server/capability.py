"""The CapabilityStatement (``GET /fhir/metadata``): what this server does, and no more.

Each claim here is checked against the running server by ``tests/server/test_server_capability.py``.
"""

from __future__ import annotations

from typing import Any

from medsleep.fhir.outcome import FHIR_VERSION
from medsleep.server.fhir_http import FHIR_JSON
from medsleep.server.search_params import DATE_PREFIXES, DEFAULT_COUNT, MAX_COUNT, MAX_VALUES

SEARCH_PARAMS = [
    ("patient", "reference", "Patient id, or Patient/id; comma-separated values mean OR"),
    ("subject", "reference", "Same as patient"),
    (
        "code",
        "token",
        "A reading's code (Observation.code or a component code), code or system|code; "
        "comma-separated values mean OR",
    ),
    (
        "date",
        "date",
        f"effective time; prefixes {', '.join(DATE_PREFIXES)}; repeat to AND; years 1-9999",
    ),
    ("_id", "token", "The Observation's id; comma-separated values mean OR"),
    ("status", "token", "Observation.status; comma-separated values mean OR"),
    ("category", "token", "Observation.category code or system|code"),
    ("identifier", "token", "Observation.identifier value or system|value"),
    ("_count", "number", f"Page size (default {DEFAULT_COUNT}; above {MAX_COUNT} is clamped)"),
    ("_sort", "special", "date (oldest first, the default) or -date (newest first)"),
    ("_summary", "special", "count (only Bundle.total) or false"),
    ("_elements", "special", "top-level elements to return (answers are tagged SUBSETTED)"),
]


BULK_EXPORT = {
    "name": "export",
    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    "documentation": "Bulk Data $export (also GET Patient/$export): Observation, Provenance "
    "and AuditEvent NDJSON; _type, _outputFormat (ndjson) and includeArchived=true. _since "
    "is on lastUpdated, when medsleep stored a resource: an original counts from its ingest "
    "batch, a summary and its Provenance from their consolidation run, an AuditEvent from "
    "its own time; a batch or run still open at _since counts, so exporting with the last "
    "manifest's transactionTime misses nothing. Files need the bearer token.",
}


def capability_statement(base: str, date: str, version: str, *, bulk: bool) -> dict[str, Any]:
    """What this server does, as a FHIR CapabilityStatement (``bulk``: $export is served)."""
    operations: list[dict[str, Any]] = [
        {
            "name": "ingest",
            "definition": "urn:medsleep:OperationDefinition:ingest",
            "documentation": "POST an application/fhir+ndjson stream of "
            "Observations (or Bundles, one per line); answers the ingest counts.",
        }
    ]
    if bulk:
        operations.append(BULK_EXPORT)
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "medsleep",
        "kind": "instance",
        "software": {"name": "medsleep", "version": version},
        "implementation": {"description": "medsleep FHIR ingest and hot-store search", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Observations are stored as numeric readings. Search and read cover the hot "
                    "store: readings the nightly consolidation collapsed are in the archive, not "
                    "here. Create assigns a new id (a POSTed id is ignored); update (PUT) "
                    "creates with the client's id or adds a version; delete retracts "
                    "(kept for audit, 410 on read). In batch and transaction Bundles, "
                    "Observations are stored under their own id or fullUrl; other resources "
                    "are answered 200 with an OperationOutcome and not stored, and urn:uuid "
                    "subject references to them resolve to Patient/{id} (the Patient's id, or "
                    f"the uuid). At most {MAX_VALUES} OR values in one search. JSON only: "
                    "XML is answered 406."
                ),
                "security": {
                    "description": "Bearer token in the Authorization header on every read "
                    "and write; tokens have read and/or write scope.",
                },
                "resource": [
                    {
                        "type": "Observation",
                        "interaction": [
                            {"code": code}
                            for code in ("create", "read", "vread", "update", "delete")
                        ]
                        + [{"code": "search-type"}],
                        "versioning": "versioned-update",
                        "readHistory": False,
                        "updateCreate": True,
                        "conditionalCreate": True,
                        "conditionalRead": "not-supported",
                        "conditionalUpdate": False,
                        "conditionalDelete": "not-supported",
                        "searchParam": [
                            {"name": name, "type": kind, "documentation": text}
                            for name, kind, text in SEARCH_PARAMS
                        ],
                    }
                ],
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
                "operation": operations,
            }
        ],
    }
    if bulk:
        statement["instantiates"] = [
            "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
        ]
    return statement
