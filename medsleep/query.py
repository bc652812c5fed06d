"""Read-only queries over the store for scripts, the CLI and the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.sql import Select

from medsleep.store.models import Quarantine, Reading
from medsleep.timefmt import iso

_reading = Reading.__table__  # type: ignore[attr-defined]
_quarantine = Quarantine.__table__  # type: ignore[attr-defined]
STATES = {"raw": ("raw",), "retained": ("retained",), "all": ("raw", "retained")}
READING_COLUMNS = (
    "id",
    "patient",
    "code",
    "effective",
    "value",
    "unit",
    "state",
    "resource_key",
    "resource_version",
    "part",
    "status",
)


@dataclass(frozen=True)
class ReadingFilter:
    patient: str | None = None
    code: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    state: str = "all"


def _filtered(query: Select[Any], table: Any, where: ReadingFilter, time_col: str) -> Select[Any]:
    if where.patient is not None:
        query = query.where(table.c.patient == where.patient)
    if where.code is not None:
        query = query.where(table.c.code == where.code)
    if where.since_ms is not None:
        query = query.where(table.c[time_col] >= where.since_ms)
    if where.until_ms is not None:
        query = query.where(table.c[time_col] < where.until_ms)
    return query


def iter_readings(engine: Engine, where: ReadingFilter) -> Iterator[dict[str, Any]]:
    """Readings in the hot store (not superseded or retracted), oldest first per series."""
    columns = [c for c in _reading.c if c.name not in ("resource_json",)]
    query = select(*columns).where(_reading.c.state.in_(STATES[where.state]))
    query = _filtered(query, _reading, where, "effective_ms")
    query = query.order_by(_reading.c.patient, _reading.c.code, _reading.c.effective_ms)
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=5000).execute(query):
            mapping = row._mapping
            out = {name: mapping[name] for name in READING_COLUMNS if name in mapping}
            out["effective"] = iso(mapping["effective_ms"])
            yield {name: out[name] for name in READING_COLUMNS}


def list_quarantine(engine: Engine, limit: int | None = None) -> list[dict[str, Any]]:
    query = select(_quarantine).order_by(_quarantine.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [{**row._mapping, "at": iso(row._mapping["at_ms"])} for row in conn.execute(query)]
