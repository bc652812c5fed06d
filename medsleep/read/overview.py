"""What the dashboard shows, as plain query functions: aggregated in SQL, returned as small
frames and frozen dataclasses with epoch-ms times. No Streamlit here (the dashboard caches
and draws); the Patient page's queries live in ``views_patient``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, func, select, union

from medsleep.store.bulk import scalar_int
from medsleep.store.tables import (
    ARCHIVE_FILE,
    HOT_STATES,
    QUARANTINE,
    READING,
    RETENTION,
    RUN,
    SUMMARY,
    ArchiveState,
    ReadingState,
    SummaryState,
)

_reading = READING
_summary = SUMMARY
_retention = RETENTION
_run = RUN
_archive = ARCHIVE_FILE
_quarantine = QUARANTINE


_DAY = 86_400_000


@dataclass(frozen=True)
class StoreOverview:
    """Counts across the store: ``readings_collapsed`` is what active summaries stand for,
    ``readings_archived`` the rows in active archive files."""

    patients: int
    readings_hot: int
    readings_raw: int
    readings_retained: int
    summaries: int
    readings_collapsed: int
    readings_archived: int
    archive_files: int
    archive_bytes: int
    runs: int
    quarantined: int

    @property
    def empty(self) -> bool:
        return self.readings_hot == 0 and self.summaries == 0


def store_overview(engine: Engine) -> StoreOverview:
    with engine.connect() as conn:
        states: dict[str, int] = dict(
            conn.execute(
                select(_reading.c.state, func.count())
                .where(_reading.c.state.in_(HOT_STATES))
                .group_by(_reading.c.state)
            ).all()
        )
        summaries, collapsed = conn.execute(
            select(func.count(), func.coalesce(func.sum(_summary.c.n), 0)).where(
                _summary.c.state == SummaryState.ACTIVE
            )
        ).one()
        files, rows, size = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(_archive.c.rows), 0),
                func.coalesce(func.sum(_archive.c.bytes), 0),
            ).where(_archive.c.state == ArchiveState.ACTIVE)
        ).one()
        patients = union(
            select(_reading.c.patient).group_by(_reading.c.patient),
            select(_summary.c.patient).group_by(_summary.c.patient),
        ).subquery()
        return StoreOverview(
            patients=scalar_int(conn, select(func.count()).select_from(patients)),
            readings_hot=int(sum(states.values())),
            readings_raw=int(states.get(ReadingState.RAW, 0)),
            readings_retained=int(states.get(ReadingState.RETAINED, 0)),
            summaries=int(summaries),
            readings_collapsed=int(collapsed),
            readings_archived=int(rows),
            archive_files=int(files),
            archive_bytes=int(size),
            runs=scalar_int(conn, select(func.count()).select_from(_run)),
            quarantined=scalar_int(conn, select(func.count()).select_from(_quarantine)),
        )


def compression_by_day(engine: Engine) -> pd.DataFrame:
    """Per UTC day of readings: readings represented, rows kept for them (summaries plus hot
    readings) and the ratio between the two; columns ``day_ms``, ``readings``, ``rows``,
    ``ratio``."""
    s, r = _summary.c, _reading.c
    s_day = (s.bucket_start_ms // _DAY).label("day")
    r_day = (r.effective_ms // _DAY).label("day")
    with engine.connect() as conn:
        summarised = conn.execute(
            select(s_day, func.sum(s.n), func.count())
            .where(s.state == SummaryState.ACTIVE)
            .group_by(s_day)
        ).all()
        hot = conn.execute(
            select(r_day, func.count()).where(r.state.in_(HOT_STATES)).group_by(r_day)
        ).all()
    days: dict[int, list[int]] = {}
    for day, n, count in summarised:
        days.setdefault(int(day), [0, 0])[0] += int(n)
        days[int(day)][1] += int(count)
    for day, count in hot:
        days.setdefault(int(day), [0, 0])[0] += int(count)
        days[int(day)][1] += int(count)
    frame = pd.DataFrame(
        [(day * _DAY, n, rows) for day, (n, rows) in sorted(days.items())],
        columns=["day_ms", "readings", "rows"],
    )
    frame["ratio"] = frame["readings"] / frame["rows"].where(frame["rows"] > 0)
    return frame


def reasons_breakdown(engine: Engine, run_id: int | None = None) -> pd.DataFrame:
    """Retention reasons of readings still retained (or of one run): ``kind`` (rule, detector,
    context, artifact), ``rule`` and ``readings``, most frequent first."""
    t, r = _retention.c, _reading.c
    query = select(t.kind, t.rule, func.count(func.distinct(t.reading_id)).label("readings"))
    if run_id is None:
        query = query.join(_reading, r.id == t.reading_id).where(r.state == ReadingState.RETAINED)
    else:
        query = query.where(t.run_id == run_id)
    query = query.group_by(t.kind, t.rule).order_by(func.count(func.distinct(t.reading_id)).desc())
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=["kind", "rule", "readings"])


def retained_by_kind(engine: Engine) -> dict[str, int]:
    """How many readings still retained have at least one reason of each kind (a reading kept
    for a rule and as a detector's context counts under both)."""
    t, r = _retention.c, _reading.c
    query = (
        select(t.kind, func.count(func.distinct(t.reading_id)))
        .join(_reading, r.id == t.reading_id)
        .where(r.state == ReadingState.RETAINED)
        .group_by(t.kind)
    )
    with engine.connect() as conn:
        return {str(kind): int(n) for kind, n in conn.execute(query)}
