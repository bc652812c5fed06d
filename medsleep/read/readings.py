"""Read-only queries over the store for scripts, the CLI and the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.sql import Select

from medsleep.read.explain import describe_reason
from medsleep.store.tables import (
    HOT_STATES,
    QUARANTINE,
    READING,
    RETENTION,
    RUN,
    SUMMARY,
    ReadingState,
    SummaryState,
)
from medsleep.timefmt import iso

_reading = READING
_quarantine = QUARANTINE
_summary = SUMMARY
_run = RUN
_retention = RETENTION
STATES = {
    "raw": (ReadingState.RAW,),
    "retained": (ReadingState.RETAINED,),
    "all": HOT_STATES,
}
READING_FIELDS = (
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
    "reasons",
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
    columns = list(_reading.c)
    query = select(*columns).where(_reading.c.state.in_(STATES[where.state]))
    query = _filtered(query, _reading, where, "effective_ms")
    query = query.order_by(_reading.c.patient, _reading.c.code, _reading.c.effective_ms)
    with engine.connect() as conn:
        for batch in conn.execution_options(yield_per=5000).execute(query).partitions():
            mappings = [row._mapping for row in batch]
            retained = [m["id"] for m in mappings if m["state"] == ReadingState.RETAINED]
            reasons = reasons_for(conn, retained) if retained else {}
            for mapping in mappings:
                out = {name: mapping[name] for name in READING_FIELDS if name in mapping}
                out["effective"] = iso(mapping["effective_ms"])
                out["reasons"] = "; ".join(reasons.get(mapping["id"], ()))
                yield {name: out[name] for name in READING_FIELDS}


def reasons_for(conn: Any, reading_ids: list[int]) -> dict[int, list[str]]:
    """Retention reasons per reading id, most recent run first."""
    found: dict[int, list[str]] = {}
    for start in range(0, len(reading_ids), 500):
        part = reading_ids[start : start + 500]
        query = (
            select(_retention)
            .where(_retention.c.reading_id.in_(part))
            .order_by(_retention.c.reading_id, _retention.c.run_id.desc(), _retention.c.id)
        )
        for row in conn.execute(query):
            found.setdefault(int(row.reading_id), []).append(describe_reason(row))
    return found


SUMMARY_FIELDS = (
    "id",
    "run_id",
    "patient",
    "code",
    "unit",
    "band",
    "bucket_start",
    "bucket_end",
    "n",
    "min",
    "max",
    "mean",
    "std",
    "median",
    "first",
    "first_value",
    "last",
    "last_value",
    "values_json",
)


def iter_summaries(engine: Engine, where: ReadingFilter) -> Iterator[dict[str, Any]]:
    """Active summaries, in series and time order."""
    query = select(_summary).where(_summary.c.state == SummaryState.ACTIVE)
    query = _filtered(query, _summary, where, "bucket_start_ms")
    query = query.order_by(
        _summary.c.patient, _summary.c.code, _summary.c.bucket_start_ms, _summary.c.band
    )
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=5000).execute(query):
            m = row._mapping
            out = dict(m)
            out["bucket_start"], out["bucket_end"] = (
                iso(m["bucket_start_ms"]),
                iso(m["bucket_end_ms"]),
            )
            out["first"], out["last"] = iso(m["first_ms"]), iso(m["last_ms"])
            yield {name: out[name] for name in SUMMARY_FIELDS}
