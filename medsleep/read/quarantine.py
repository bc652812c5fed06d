"""Rejected input: what the quarantine holds, newest first."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from medsleep.store.bulk import scalar_int
from medsleep.store.tables import (
    QUARANTINE,
)
from medsleep.timefmt import iso

_quarantine = QUARANTINE


def quarantine_entries(
    engine: Engine, limit: int = 500, search: str = ""
) -> tuple[int, pd.DataFrame]:
    """(total rejected inputs, the newest ``limit`` of them matching ``search`` in source or
    error): ``id``, ``at_ms``, ``batch_id``, ``source``, ``position``, ``error``, ``raw``."""
    q = _quarantine.c
    query = select(_quarantine).order_by(q.id.desc()).limit(limit)
    if search:
        needle = f"%{search.lower()}%"
        query = query.where(func.lower(q.source).like(needle) | func.lower(q.error).like(needle))
    with engine.connect() as conn:
        total = scalar_int(conn, select(func.count()).select_from(_quarantine))
        rows = conn.execute(query).all()
    columns = ["id", "at_ms", "batch_id", "source", "position", "error", "raw"]
    return total, pd.DataFrame([{c: r._mapping[c] for c in columns} for r in rows], columns=columns)


def list_quarantine(engine: Engine, limit: int | None = None) -> list[dict[str, Any]]:
    query = select(_quarantine).order_by(_quarantine.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [{**row._mapping, "at": iso(row._mapping["at_ms"])} for row in conn.execute(query)]
