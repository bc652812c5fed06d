"""Patient rows in the store: the writer upserts the demographics of a chunk (rows that
``fhir.demographics`` made from Patient resources) in the chunk's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from medsleep.fhir.demographics import PATIENT_ROW
from medsleep.store.tables import PATIENT

_IN_CLAUSE = 500


def upsert_patients(conn: Connection, rows: Sequence[tuple[Any, ...]], now_ms: int) -> int:
    """Store these demographics (``PATIENT_ROW`` tuples), the latest arrival winning unless
    both versions are numbers and the stored one is higher; returns the rows written."""
    latest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        latest[str(row[0])] = row
    ids = sorted(latest)
    p = PATIENT.c
    stored: dict[str, str] = {}
    for i in range(0, len(ids), _IN_CLAUSE):
        part = ids[i : i + _IN_CLAUSE]
        query = select(p.patient, p.resource_version).where(p.patient.in_(part))
        stored.update({str(k): str(v) for k, v in conn.execute(query).all()})
    keep = [latest[pid] for pid in ids if not _older(str(latest[pid][4]), stored.get(pid))]
    for i in range(0, len(keep), _IN_CLAUSE):
        part = [str(row[0]) for row in keep[i : i + _IN_CLAUSE]]
        conn.execute(delete(PATIENT).where(p.patient.in_(part)))
    if keep:
        conn.execute(
            insert(PATIENT),
            [{**dict(zip(PATIENT_ROW, row, strict=True)), "updated_ms": now_ms} for row in keep],
        )
    return len(keep)


def _older(version: str, stored: str | None) -> bool:
    return bool(stored and version.isdigit() and stored.isdigit() and int(version) < int(stored))
