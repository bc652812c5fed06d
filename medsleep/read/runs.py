"""Consolidation runs: the list (CLI runs, the dashboard's Runs page) and one run in detail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from medsleep.read.audit import AUDIT_COLUMNS, event_record
from medsleep.read.overview import reasons_breakdown
from medsleep.store.bulk import scalar_int
from medsleep.store.tables import (
    ARCHIVE_FILE,
    AUDIT_EVENT,
    EPISODE,
    RUN,
)
from medsleep.timefmt import iso

_episode = EPISODE
_run = RUN
_archive = ARCHIVE_FILE
_audit = AUDIT_EVENT


RUN_COLUMNS = (
    "id", "started_ms", "finished_ms", "seconds", "status", "executor", "shards_done",
    "shards_total", "readings_in", "retained", "collapsed", "summaries", "archived", "episodes",
)  # fmt: skip


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
        episodes = scalar_int(
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
            records.append(event_record(event))
    return pd.DataFrame(records, columns=list(AUDIT_COLUMNS))


def list_runs(engine: Engine, limit: int | None = None) -> list[dict[str, Any]]:
    query = select(_run).order_by(_run.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "id": r.id,
            "started": iso(r.started_ms),
            "finished": iso(r.finished_ms) if r.finished_ms else None,
            "until": iso(r.until_ms),
            "status": r.status,
            "executor": r.executor,
            "policy_digest": r.policy_digest,
            "shards_total": r.shards_total,
            "shards_done": r.shards_done,
            "counts": json.loads(r.counts_json),
            "error": r.error,
        }
        for r in rows
    ]
