"""What the dashboard shows, as plain query functions: aggregated in SQL, returned as small
frames and frozen dataclasses with epoch-ms times. No Streamlit here (the dashboard caches
and draws); the Patient page's queries live in ``views_patient``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select, union
from sqlalchemy.engine import Connection

from medsleep.audit import ChainStatus, verify_chain
from medsleep.policy import Policy
from medsleep.read.text import describe_episode
from medsleep.store.models import (
    ArchiveFileRecord,
    AuditEvent,
    Episode,
    Quarantine,
    Reading,
    Retention,
    Run,
    Summary,
)

_reading = Reading.__table__  # type: ignore[attr-defined]
_summary = Summary.__table__  # type: ignore[attr-defined]
_retention = Retention.__table__  # type: ignore[attr-defined]
_episode = Episode.__table__  # type: ignore[attr-defined]
_run = Run.__table__  # type: ignore[attr-defined]
_archive = ArchiveFileRecord.__table__  # type: ignore[attr-defined]
_quarantine = Quarantine.__table__  # type: ignore[attr-defined]
_audit = AuditEvent.__table__  # type: ignore[attr-defined]
_DAY = 86_400_000
RUN_COLUMNS = (
    "id", "started_ms", "finished_ms", "seconds", "status", "executor", "shards_done",
    "shards_total", "readings_in", "retained", "collapsed", "summaries", "archived", "episodes",
)  # fmt: skip


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
                .where(_reading.c.state.in_(("raw", "retained")))
                .group_by(_reading.c.state)
            ).all()
        )
        summaries, collapsed = conn.execute(
            select(func.count(), func.coalesce(func.sum(_summary.c.n), 0)).where(
                _summary.c.state == "active"
            )
        ).one()
        files, rows, size = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(_archive.c.rows), 0),
                func.coalesce(func.sum(_archive.c.bytes), 0),
            ).where(_archive.c.state == "active")
        ).one()
        patients = union(
            select(_reading.c.patient).group_by(_reading.c.patient),
            select(_summary.c.patient).group_by(_summary.c.patient),
        ).subquery()
        return StoreOverview(
            patients=_count(conn, select(func.count()).select_from(patients)),
            readings_hot=int(sum(states.values())),
            readings_raw=int(states.get("raw", 0)),
            readings_retained=int(states.get("retained", 0)),
            summaries=int(summaries),
            readings_collapsed=int(collapsed),
            readings_archived=int(rows),
            archive_files=int(files),
            archive_bytes=int(size),
            runs=_count(conn, select(func.count()).select_from(_run)),
            quarantined=_count(conn, select(func.count()).select_from(_quarantine)),
        )


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(query).scalar_one())


def compression_by_day(engine: Engine) -> pd.DataFrame:
    """Per UTC day of readings: readings represented, rows kept for them (summaries plus hot
    readings) and the ratio between the two; columns ``day_ms``, ``readings``, ``rows``,
    ``ratio``."""
    s, r = _summary.c, _reading.c
    s_day = (s.bucket_start_ms // _DAY).label("day")
    r_day = (r.effective_ms // _DAY).label("day")
    with engine.connect() as conn:
        summarised = conn.execute(
            select(s_day, func.sum(s.n), func.count()).where(s.state == "active").group_by(s_day)
        ).all()
        hot = conn.execute(
            select(r_day, func.count()).where(r.state.in_(("raw", "retained"))).group_by(r_day)
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


def recent_runs(engine: Engine, limit: int = 50) -> pd.DataFrame:
    """The newest consolidation runs with status, duration and counts (``RUN_COLUMNS``)."""
    with engine.connect() as conn:
        rows = conn.execute(select(_run).order_by(_run.c.id.desc()).limit(limit)).all()
    records = []
    for row in rows:
        counts = json.loads(row.counts_json or "{}")
        finished = row.finished_ms
        records.append(
            {
                "id": int(row.id),
                "started_ms": int(row.started_ms),
                "finished_ms": int(finished) if finished is not None else None,
                "seconds": (finished - row.started_ms) / 1000 if finished is not None else None,
                "status": row.status,
                "executor": row.executor,
                "shards_done": int(row.shards_done),
                "shards_total": int(row.shards_total),
                **{key: int(counts.get(key, 0)) for key in RUN_COLUMNS[8:]},
            }
        )
    return pd.DataFrame(records, columns=list(RUN_COLUMNS))


def reasons_breakdown(engine: Engine, run_id: int | None = None) -> pd.DataFrame:
    """Retention reasons of readings still retained (or of one run): ``kind`` (rule, detector,
    context, artifact), ``rule`` and ``readings``, most frequent first."""
    t, r = _retention.c, _reading.c
    query = select(t.kind, t.rule, func.count(func.distinct(t.reading_id)).label("readings"))
    if run_id is None:
        query = query.join(_reading, r.id == t.reading_id).where(r.state == "retained")
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
        .where(r.state == "retained")
        .group_by(t.kind)
    )
    with engine.connect() as conn:
        return {str(kind): int(n) for kind, n in conn.execute(query)}


@dataclass(frozen=True)
class RunDetail:
    """One run: its row, counts, policy, archive files and audit events."""

    run: dict[str, Any]
    counts: dict[str, Any]
    policy: dict[str, Any]
    archive_files: pd.DataFrame
    audit: pd.DataFrame
    reasons: pd.DataFrame
    episodes: int


def run_detail(engine: Engine, run_id: int) -> RunDetail | None:
    """Everything recorded about one consolidation run, or None when there is no such run."""
    with engine.connect() as conn:
        row = conn.execute(select(_run).where(_run.c.id == run_id)).first()
        if row is None:
            return None
        files = conn.execute(
            select(_archive.c.name, _archive.c.patient, _archive.c.rows, _archive.c.bytes)
            .add_columns(_archive.c.sha256, _archive.c.state, _archive.c.created_ms)
            .where(_archive.c.run_id == run_id)
            .order_by(_archive.c.name)
        ).all()
        events = _run_events(conn, run_id, row.started_ms)
        episodes = _count(
            conn, select(func.count()).select_from(_episode).where(_episode.c.run_id == run_id)
        )
    run = {k: v for k, v in row._mapping.items() if k not in ("policy_json", "counts_json")}
    return RunDetail(
        run=run,
        counts=json.loads(row.counts_json or "{}"),
        policy=json.loads(row.policy_json or "{}"),
        archive_files=pd.DataFrame(
            [tuple(f) for f in files],
            columns=["name", "patient", "rows", "bytes", "sha256", "state", "created_ms"],
        ),
        audit=events,
        reasons=reasons_breakdown(engine, run_id),
        episodes=episodes,
    )


def _run_events(conn: Connection, run_id: int, started_ms: int) -> pd.DataFrame:
    """Audit events whose details name this run: consolidate.started, .committed, and any
    later event about it (a restore). ``append_event`` writes compact JSON, so a LIKE on
    ``"run_id":N`` narrows the search in SQL; the JSON check makes it exact."""
    query = (
        select(_audit)
        .where(_audit.c.at_ms >= started_ms, _audit.c.details_json.contains(f'"run_id":{run_id}'))
        .order_by(_audit.c.seq)
    )
    records = []
    for event in conn.execute(query):
        details = json.loads(event.details_json)
        if isinstance(details, dict) and details.get("run_id") == run_id:
            records.append(_event_record(event))
    return pd.DataFrame(records, columns=list(AUDIT_COLUMNS))


AUDIT_COLUMNS = ("seq", "at_ms", "actor", "action", "details", "hash")


def _event_record(event: Any) -> dict[str, Any]:
    return {
        "seq": int(event.seq),
        "at_ms": int(event.at_ms),
        "actor": event.actor,
        "action": event.action,
        "details": event.details_json,
        "hash": event.hash,
    }


def recent_audit(engine: Engine, limit: int = 200, action_prefix: str = "") -> pd.DataFrame:
    """The newest audit events (optionally of actions starting with ``action_prefix``)."""
    query = select(_audit).order_by(_audit.c.seq.desc()).limit(limit)
    if action_prefix:
        query = query.where(_audit.c.action.startswith(action_prefix))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame([_event_record(r) for r in rows], columns=list(AUDIT_COLUMNS))


def audit_chain_status(engine: Engine) -> ChainStatus:
    """Walk the whole audit chain (``ok``, ``events``, ``broken_at``, ``problem``)."""
    with engine.connect() as conn:
        return verify_chain(conn)


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
        total = _count(conn, select(func.count()).select_from(_quarantine))
        rows = conn.execute(query).all()
    columns = ["id", "at_ms", "batch_id", "source", "position", "error", "raw"]
    return total, pd.DataFrame([{c: r._mapping[c] for c in columns} for r in rows], columns=columns)


@dataclass(frozen=True)
class DigestPatient:
    patient: str
    peak_news2: int
    episodes: tuple[str, ...]  # "02:14–02:31 SpO2 down to 86 %, HR up to 128 /min, NEWS2 7"
    first_ms: int


@dataclass(frozen=True)
class MorningDigest:
    """The episodes of one run (``run_id`` None: there is no run yet), patients ranked by
    their peak NEWS2 aggregate, then by how many episodes they had."""

    run_id: int | None
    run_finished_ms: int | None
    since_ms: int | None  # the window: ``hours`` up to the newest reading the run consolidated
    until_ms: int | None
    patients: tuple[DigestPatient, ...]
    quiet_patients: int  # consolidated in the run, with no episode in the window


def digest_run_ids(engine: Engine, limit: int = 30) -> list[int]:
    """Finished (or stopped) runs, newest first: the digest's choices."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_run.c.id).where(_run.c.status != "running").order_by(_run.c.id.desc())
        ).all()
    return [int(r[0]) for r in rows][:limit]


def morning_digest(
    engine: Engine, policy: Policy, tz: tzinfo, run_id: int | None = None, hours: float = 24
) -> MorningDigest:
    """Last night's episodes: those a run (``run_id``, or the newest finished one) found in
    the ``hours`` up to the newest reading it consolidated. A nightly run's window is last
    night; a first run over a backlog shows its last night, not months."""
    e, s = _episode.c, _summary.c
    with engine.connect() as conn:
        query = select(_run).where(_run.c.status != "running").order_by(_run.c.id.desc())
        if run_id is not None:
            query = select(_run).where(_run.c.id == run_id)
        run = conn.execute(query.limit(1)).first()
        if run is None:
            return MorningDigest(None, None, None, None, (), 0)
        newest = conn.execute(
            select(func.max(s.bucket_end_ms)).where(s.run_id == run.id)
        ).scalar_one()
        newest_episode = conn.execute(
            select(func.max(e.end_ms)).where(e.run_id == run.id)
        ).scalar_one()
        ends = [int(newest)] if newest is not None else []
        ends += [int(newest_episode) + 1] if newest_episode is not None else []
        until = min(max(ends), int(run.until_ms)) if ends else int(run.until_ms)
        since = until - int(hours * 3_600_000)
        rows = conn.execute(
            select(e.patient, e.start_ms, e.end_ms, e.worst_json, e.peak_news2)
            .where(e.run_id == run.id, e.end_ms >= since, e.start_ms < until)
            .order_by(e.patient, e.start_ms)
        ).all()
        consolidated = _count(
            conn,
            select(func.count(func.distinct(s.patient))).where(
                s.run_id == run.id, s.bucket_end_ms > since, s.bucket_start_ms < until
            ),
        )
    by_patient: dict[str, list[Any]] = {}
    for row in rows:
        by_patient.setdefault(row.patient, []).append(row)
    patients = [
        DigestPatient(
            patient=patient,
            peak_news2=max(int(r.peak_news2 or 0) for r in episodes),
            episodes=tuple(
                describe_episode(
                    r.start_ms, r.end_ms, json.loads(r.worst_json), r.peak_news2, policy, tz
                )
                for r in episodes
            ),
            first_ms=int(episodes[0].start_ms),
        )
        for patient, episodes in by_patient.items()
    ]
    patients.sort(key=lambda p: (-p.peak_news2, -len(p.episodes), p.patient))
    return MorningDigest(
        run_id=int(run.id),
        run_finished_ms=run.finished_ms,
        since_ms=since,
        until_ms=until,
        patients=tuple(patients),
        quiet_patients=max(consolidated - len(patients), 0),
    )
