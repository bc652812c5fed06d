"""Put archived readings back into the hot store.

Restore supersedes every summary it touches and restores *all* of that summary's readings
(a summary is all-or-nothing), so what is in the hot store and what is summarised never
overlap. Restoring twice changes nothing the second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select, update

from medsleep.archive.index import summarised_readings
from medsleep.audit import append_event
from medsleep.errors import ScopeError
from medsleep.store.bodies import put_back_bodies
from medsleep.store.bulk import insert_rows
from medsleep.store.handle import Store
from medsleep.store.tables import (
    ARCHIVE_FILE,
    READING,
    READING_COLUMNS,
    RUN,
    SUMMARY,
    ReadingState,
    SummaryState,
)

_reading = READING
_summary = SUMMARY
_archive = ARCHIVE_FILE


# Restore needs --run or --patient, and one the store knows: a usage error (exit 2).
RestoreScopeError = ScopeError


@dataclass
class RestoreReport:
    summaries: int = 0
    readings: int = 0
    already_present: int = 0
    files: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "summaries": self.summaries,
            "readings": self.readings,
            "already_present": self.already_present,
            "files": self.files,
        }


def _summaries_in_scope(
    engine: Engine,
    run_id: int | None,
    patient: str | None,
    since_ms: int | None,
    until_ms: int | None,
) -> list[Any]:
    query = select(_summary).where(_summary.c.state == SummaryState.ACTIVE)
    if patient is not None:
        query = query.where(_summary.c.patient == patient)
    if since_ms is not None:
        query = query.where(_summary.c.bucket_end_ms > since_ms)
    if until_ms is not None:
        query = query.where(_summary.c.bucket_start_ms < until_ms)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        if run_id is None:
            return list(rows)
        names = {
            r[0] for r in conn.execute(select(_archive.c.name).where(_archive.c.run_id == run_id))
        }
    return [row for row in rows if names & set(json.loads(row.archive_files))]


def _check_known(engine: Engine, run_id: int | None, patient: str | None) -> None:
    """RestoreScopeError when the run or the patient never existed in this store."""
    with engine.connect() as conn:
        if run_id is not None:
            found = conn.execute(select(RUN.c.id).where(RUN.c.id == run_id)).first()
            if found is None:
                raise RestoreScopeError(f"no consolidation run {run_id} in this store")
        if patient is not None:
            for table in (_summary, _reading):
                if conn.execute(
                    select(table.c.id).where(table.c.patient == patient).limit(1)
                ).first():
                    return
            raise RestoreScopeError(f"no patient {patient!r} in this store")


def restore(
    store: Store,
    *,
    run_id: int | None = None,
    patient: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    reason: str = "",
) -> RestoreReport:
    """Restore the readings behind the active summaries in scope, exactly as they were;
    ``reason`` (why, in the restorer's words) goes into the audit event."""
    engine, archive_root = store.engine, store.archive_root
    if run_id is None and patient is None:
        raise RestoreScopeError("restore needs a run (--run) or a patient (--patient)")
    summaries = _summaries_in_scope(engine, run_id, patient, since_ms, until_ms)
    report = RestoreReport()
    if not summaries:
        _check_known(engine, run_id, patient)  # nothing to do is fine; a typo is not
        return report
    with engine.connect() as conn:
        rows = summarised_readings(conn, archive_root, summaries)
    names = sorted(set(rows["_file"]))
    with engine.begin() as conn:
        present = {
            int(r[0])
            for start in range(0, len(rows), 5000)
            for r in conn.execute(
                select(_reading.c.id).where(
                    _reading.c.id.in_([int(i) for i in rows["id"].iloc[start : start + 5000]])
                )
            )
        }
        fresh = rows.loc[~rows["id"].isin(present)]
        insert_rows(conn, "reading", READING_COLUMNS, _reading_tuples(fresh))
        pairs = list(
            zip(fresh["resource_key"].tolist(), fresh["resource_version"].tolist(), strict=True)
        )
        put_back_bodies(
            conn,
            dict(zip(pairs, fresh["resource_json"].tolist(), strict=True)),
            dict(zip(pairs, (int(b) for b in fresh["batch_id"].tolist()), strict=True)),
            store.now_ms(),
            _id_ranges(fresh),
        )
        conn.execute(
            update(_summary)
            .where(_summary.c.id.in_([int(s.id) for s in summaries]))
            .values(state=SummaryState.SUPERSEDED)
        )
        report.summaries, report.readings = len(summaries), len(fresh)
        report.already_present, report.files = len(present), names
        append_event(
            conn,
            actor=store.actor,
            action="restore",
            details={
                "run_id": run_id,
                "patient": patient,
                "since_ms": since_ms,
                "until_ms": until_ms,
                **report.as_json(),
                **({"reason": reason} if reason else {}),
            },
            at_ms=store.now_ms(),
        )
    return report


def _id_ranges(rows: pd.DataFrame) -> dict[tuple[str, str], tuple[int, int]]:
    ids = rows.groupby(["resource_key", "resource_version"], sort=False)["id"].agg(["min", "max"])
    return {
        (str(key), str(version)): (int(lo), int(hi))
        for (key, version), lo, hi in zip(ids.index, ids["min"], ids["max"], strict=True)
    }


def _reading_tuples(rows: pd.DataFrame) -> list[tuple[Any, ...]]:
    out = []
    for record in rows[list(READING_COLUMNS)].itertuples(index=False, name=None):
        values = list(record)
        values[READING_COLUMNS.index("state")] = ReadingState.RAW
        out.append(tuple(v.item() if hasattr(v, "item") else v for v in values))
    return out
