"""The morning digest: last night's episodes per patient, ranked by peak NEWS2."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from sqlalchemy import Engine, func, select

from medsleep.policy import Policy
from medsleep.read.text import describe_episode
from medsleep.store.bulk import scalar_int
from medsleep.store.tables import (
    EPISODE,
    RUN,
    SUMMARY,
    RunStatus,
)

_summary = SUMMARY
_episode = EPISODE
_run = RUN


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
            select(_run.c.id).where(_run.c.status != RunStatus.RUNNING).order_by(_run.c.id.desc())
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
        query = select(_run).where(_run.c.status != RunStatus.RUNNING).order_by(_run.c.id.desc())
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
        consolidated = scalar_int(
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
