"""Small helpers the tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from medsleep.store.bodies import texts_of
from medsleep.store.models import Quarantine, Reading

READING = Reading.__table__  # type: ignore[attr-defined]
QUARANTINE = Quarantine.__table__  # type: ignore[attr-defined]


def readings(engine: Engine, **where: Any) -> list[dict[str, Any]]:
    """The hot store's readings, each with its resource's text as ``resource_json``."""
    query = select(READING).order_by(READING.c.id)
    for column, value in where.items():
        query = query.where(READING.c[column] == value)
    with engine.connect() as conn:
        return with_texts(conn, [dict(row._mapping) for row in conn.execute(query)])


def with_texts(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` of the reading table with their resource's original text added."""
    texts = texts_of(conn, {(r["resource_key"], r["resource_version"]) for r in rows})
    return [{**r, "resource_json": texts[(r["resource_key"], r["resource_version"])]} for r in rows]


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


def ndjson_of(resources: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in resources)


def check_conservation(
    engine: Engine, archive_root: Path, expected_ids: set[int]
) -> dict[str, int]:
    """Every expected reading is in the hot store, or in exactly one active summary and its
    verified archive file, never both; each summary's statistics are its readings'."""
    import numpy as np
    from sqlalchemy import select

    from medsleep.archive.index import summarised_readings
    from medsleep.store.models import Summary

    summary = Summary.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        hot = {
            int(r.id)
            for r in conn.execute(
                select(READING.c.id).where(READING.c.state.in_(("raw", "retained")))
            )
        }
        active = conn.execute(select(summary).where(summary.c.state == "active")).all()
        archived = summarised_readings(conn, archive_root, active)
    archived_ids = [int(i) for i in archived["id"]]
    assert len(archived_ids) == len(set(archived_ids)), "a reading is in two summaries"
    assert not hot & set(archived_ids), "a reading is both hot and summarised"
    assert hot | set(archived_ids) == expected_ids
    for s in active:
        mine = archived[
            (archived["patient"] == s.patient)
            & (archived["code"] == s.code)
            & (archived["unit"] == s.unit)
            & (archived["band"] == s.band)
            & (archived["bucket_start_ms"].astype("int64") == s.bucket_start_ms)
        ]
        values = mine["value"].astype(float).to_numpy()
        assert len(values) == s.n
        assert (s.min, s.max) == (values.min(), values.max())
        assert np.isclose(s.mean, values.mean())
        assert s.median == float(np.median(values))
        times = mine["effective_ms"].astype("int64")
        assert (s.first_ms, s.last_ms) == (times.min(), times.max())
    return {"hot": len(hot), "archived": len(archived_ids), "summaries": len(active)}


def reading_ids(engine: Engine) -> set[int]:
    from sqlalchemy import select

    with engine.connect() as conn:
        return {int(r[0]) for r in conn.execute(select(READING.c.id))}
