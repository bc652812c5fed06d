"""Patient resources in the input: their demographics (name, MRN, birth date) for the
dashboard's headers. The parser turns a Patient into one row (pure, runs in parse workers);
``ingest.patients`` upserts the rows of a chunk. A Patient is counted among the skipped
resources with the reason ``PATIENT_STORED`` (it stores no reading), so counts balance.
"""

from __future__ import annotations

import re
from typing import Any

from medsleep.fhir.datatypes import ID
from medsleep.fhir.parse import ResourceRejected

PATIENT_STORED = "not an Observation (Patient): demographics kept for the patient header"
PATIENT_ROW = ("patient", "name", "mrn", "birth_date", "resource_version")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")  # FHIR date: YYYY, YYYY-MM or YYYY-MM-DD
_MRN = "MR"  # v2-0203 identifier type: medical record number


def demographics(resource: dict[str, Any], full_url: str | None = None) -> tuple[str, ...]:
    """A Patient resource as a ``PATIENT_ROW``; its id, or the ``urn:uuid`` of its Bundle
    entry (what readings' subjects resolve to). Malformed optional parts are left empty; a
    missing or malformed id or birthDate is rejected.

    >>> demographics({"resourceType": "Patient", "id": "p1", "birthDate": "1950-03-01",
    ...     "name": [{"given": ["Ana"], "family": "Muster"}],
    ...     "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "12345"}]})
    ('p1', 'Ana Muster', '12345', '1950-03-01', '')
    """
    patient = resource.get("id")
    if patient is None and isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
        patient = full_url.removeprefix("urn:uuid:")
    if not isinstance(patient, str) or not ID.fullmatch(patient):
        raise ResourceRejected("Patient.id is missing or not a FHIR id")
    birth = resource.get("birthDate", "")
    if not isinstance(birth, str) or (birth and not _DATE.fullmatch(birth)):
        raise ResourceRejected(f"Patient.birthDate is not a FHIR date: {birth!r}")
    meta = resource.get("meta")
    version = ""
    if isinstance(meta, dict):
        version = str(meta.get("versionId") or meta.get("lastUpdated") or "")
    return (patient, _name(resource.get("name")), _mrn(resource.get("identifier")), birth, version)


def _name(names: Any) -> str:
    """The official name, else the usual one, else the first, as people write it."""
    if not isinstance(names, list):
        return ""
    usable = [n for n in names if isinstance(n, dict)]
    usable.sort(key=lambda n: {"official": 0, "usual": 1}.get(str(n.get("use")), 2))
    for name in usable:
        if isinstance(name.get("text"), str) and name["text"].strip():
            return str(name["text"]).strip()
        given = name.get("given")
        parts = [g for g in given if isinstance(g, str)] if isinstance(given, list) else []
        if isinstance(name.get("family"), str):
            parts.append(name["family"])
        if parts:
            return " ".join(p.strip() for p in parts if p.strip())
    return ""


def _mrn(identifiers: Any) -> str:
    """The identifier typed MR (medical record number), else the first with a value."""
    if not isinstance(identifiers, list):
        return ""
    values = [i for i in identifiers if isinstance(i, dict) and isinstance(i.get("value"), str)]
    for identifier in values:
        kind = identifier.get("type")
        codings = kind.get("coding") if isinstance(kind, dict) else None
        if isinstance(codings, list) and any(
            isinstance(c, dict) and c.get("code") == _MRN for c in codings
        ):
            return str(identifier["value"])
    return str(values[0]["value"]) if values else ""
