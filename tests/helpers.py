"""Small helpers the tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from medsleep.store.models import Quarantine, Reading

READING = Reading.__table__  # type: ignore[attr-defined]
QUARANTINE = Quarantine.__table__  # type: ignore[attr-defined]


def readings(engine: Engine, **where: Any) -> list[dict[str, Any]]:
    query = select(READING).order_by(READING.c.id)
    for column, value in where.items():
        query = query.where(READING.c[column] == value)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def quarantined(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(select(QUARANTINE).order_by(QUARANTINE.c.id))
        ]


def observation(
    rid: str | None = "obs-1",
    *,
    code: str = "8867-4",
    value: Any = 72,
    unit: str = "/min",
    when: str = "2026-01-05T10:00:00Z",
    patient: str = "p1",
    status: str = "final",
    version: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A minimal valid vital-sign Observation, changed by keyword."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }
    if rid is not None:
        resource["id"] = rid
    if version is not None:
        resource["meta"] = {"versionId": version}
    resource.update(extra)
    return resource


def write_ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path
