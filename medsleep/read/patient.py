"""What the dashboard's Patient page shows, aggregated in SQL so a month opens fast.

``patient_view`` returns, for one patient and time range: the summaries as min–max bands with
their mean (merged to a coarser resolution when the range is long), the readings still hot
(aggregated to at most ``max_points`` per vital), every retained reading with why it was kept,
the NEWS2 aggregate range over time and the episodes. Nothing here sends raw months anywhere:
the largest result is the retained readings, which are the point of the page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, literal, select, union
from sqlalchemy.engine import Connection

from medsleep.archive.holds import is_held
from medsleep.policy import Policy
from medsleep.read.explain import explain_reason
from medsleep.read.news2 import news2_ranges
from medsleep.read.provisional import provisional_readings
from medsleep.read.text import KIND_ORDER, describe_episode
from medsleep.store.tables import (
    EPISODE,
    HOT_STATES,
    READING,
    RETENTION,
    SUMMARY,
    ReadingState,
    SummaryState,
)

_reading = READING
_summary = SUMMARY
_retention = RETENTION
_episode = EPISODE
_MINUTE = 60_000
_STEPS_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
BAND_COLUMNS = ("code", "unit", "start_ms", "end_ms", "n", "kept", "min", "max", "mean")
RETAINED_COLUMNS = ("id", "code", "unit", "t_ms", "value", "kind", "why", "run_id", "artifact")
CHART_SLOTS = 600
"""At most this many min–max slots per vital and lane (summaries, hot readings): under one a
pixel of a wide chart, so the browser draws a dense day as fast as a sparse one. Retained
readings are not slots: each is drawn."""


@dataclass(frozen=True)
class PatientView:
    """One patient over ``[since_ms, until_ms)``; times are epoch ms UTC.

    ``bands``: summaries per (code, unit, slot of ``summary_resolution_ms``) with ``n`` (readings
    summarised), ``kept`` (retained readings of the same slot, artifacts aside), and ``min``,
    ``max`` and ``mean`` over both (sensor-off artifact summaries left out, counted in
    ``artifact_summaries``). ``hot``: raw readings per slot of ``hot_resolution_ms``, same
    columns (a one-minute slot is one reading). ``retained``: one row per retained reading with
    its strongest ``kind`` and every reason in ``why``. ``news2``: lowest and highest possible
    NEWS2 aggregate per slot from the banded vitals ``news2_parameters``.
    """

    patient: str
    since_ms: int
    until_ms: int
    codes: tuple[str, ...]
    bands: pd.DataFrame
    hot: pd.DataFrame
    retained: pd.DataFrame
    news2: pd.DataFrame
    news2_parameters: tuple[str, ...]
    episodes: pd.DataFrame
    summary_resolution_ms: int
    hot_resolution_ms: int
    artifact_summaries: int
    retained_total: int
    on_hold: bool
    provisional: pd.DataFrame | None = None  # raw readings consolidation would keep

    @property
    def artifacts(self) -> pd.DataFrame:
        """Retained readings kept (also) as artifacts: drawn in their own lane."""
        return self.retained[self.retained["artifact"].astype(bool)]

    @property
    def clinical(self) -> pd.DataFrame:
        """Retained readings that are not artifacts."""
        return self.retained[~self.retained["artifact"].astype(bool)]

    @property
    def empty(self) -> bool:
        return self.bands.empty and self.hot.empty and self.retained.empty


def list_patients(engine: Engine, search: str = "", limit: int = 500) -> list[str]:
    """Patient ids with readings or summaries, sorted, containing ``search`` (any case)."""
    parts = []
    for table in (_reading, _summary):
        query = select(table.c.patient).group_by(table.c.patient)
        if search:
            query = query.where(func.lower(table.c.patient).contains(search.lower()))
        parts.append(query)
    with engine.connect() as conn:
        rows = conn.execute(union(*parts).order_by("patient").limit(limit))
        return [str(row[0]) for row in rows]


def patient_span(engine: Engine, patient: str) -> tuple[int, int] | None:
    """(first, last) epoch ms of the patient's hot readings and active summaries, or None."""
    with engine.connect() as conn:
        hot = conn.execute(
            select(func.min(_reading.c.effective_ms), func.max(_reading.c.effective_ms)).where(
                _reading.c.patient == patient, _reading.c.state.in_(HOT_STATES)
            )
        ).one()
        kept = conn.execute(
            select(func.min(_summary.c.bucket_start_ms), func.max(_summary.c.bucket_end_ms)).where(
                _summary.c.patient == patient, _summary.c.state == SummaryState.ACTIVE
            )
        ).one()
    firsts = [int(v) for v in (hot[0], kept[0]) if v is not None]
    lasts = [int(v) for v in (hot[1], kept[1]) if v is not None]
    return (min(firsts), max(lasts)) if firsts else None


def resolution_ms(span_ms: int, max_points: int, at_least_ms: int = _MINUTE) -> int:
    """The smallest round step (1 min … 1 day, then whole days) that cuts ``span_ms`` into at
    most ``max_points`` slots, and no less than ``at_least_ms``."""
    need = max(span_ms / max(max_points, 1), at_least_ms)
    for minutes in _STEPS_MINUTES:
        if minutes * _MINUTE >= need:
            return minutes * _MINUTE
    return math.ceil(need / (1440 * _MINUTE)) * 1440 * _MINUTE


def patient_view(
    engine: Engine,
    policy: Policy,
    patient: str,
    since_ms: int,
    until_ms: int,
    tz: tzinfo,
    *,
    max_points: int = CHART_SLOTS,
    max_retained: int = 20_000,
) -> PatientView:
    """Everything the Patient page draws for ``patient`` in ``[since_ms, until_ms)``."""
    span = max(until_ms - since_ms, _MINUTE)
    bucket_ms = policy.bucket_minutes * _MINUTE
    summary_res = resolution_ms(span, max_points, bucket_ms)
    hot_res = resolution_ms(span, max_points)
    with engine.connect() as conn:
        bands, artifacts = _summary_bands(conn, patient, since_ms, until_ms, summary_res)
        hot = _hot_slots(conn, patient, since_ms, until_ms, hot_res)
        retained, total = _retained(conn, policy, patient, since_ms, until_ms, tz, max_retained)
        news2, parameters = news2_ranges(conn, policy, patient, since_ms, until_ms, summary_res)
        episodes = _episodes(conn, policy, patient, since_ms, until_ms, tz)
        on_hold = is_held(conn, patient)
        provisional = provisional_readings(conn, policy, patient, since_ms, until_ms, tz)
    bands = _with_retained(bands, retained, summary_res)
    present = set(bands["code"]) | set(hot["code"]) | set(retained["code"])
    order = {code: i for i, code in enumerate(policy.codes)}
    codes = tuple(sorted(present, key=lambda c: (order.get(c, len(order)), c)))
    return PatientView(
        patient=patient,
        since_ms=since_ms,
        until_ms=until_ms,
        codes=codes,
        bands=bands,
        hot=hot,
        retained=retained,
        news2=news2,
        news2_parameters=parameters,
        episodes=episodes,
        summary_resolution_ms=summary_res,
        hot_resolution_ms=hot_res,
        artifact_summaries=artifacts,
        retained_total=total,
        on_hold=on_hold,
        provisional=provisional,
    )


def _with_retained(bands: pd.DataFrame, retained: pd.DataFrame, res: int) -> pd.DataFrame:
    """Each summary slot's count, min, max and mean with the retained (non-artifact) readings
    of the same code and slot folded in: a slot's band is what all its readings spanned."""
    kept = retained[~retained["artifact"].astype(bool)]
    if bands.empty or kept.empty:
        return bands
    per_slot = (
        kept.assign(start_ms=kept["t_ms"].astype(np.int64) // res * res)
        .groupby(["code", "start_ms"])["value"]
        .agg(k="count", kmin="min", kmax="max", ksum="sum")
    )
    merged = bands.join(per_slot, on=["code", "start_ms"])
    has = merged["k"].notna()
    k = merged["k"].fillna(0).astype(np.int64)
    total = merged["mean"] * merged["n"] + merged["ksum"].fillna(0.0)
    merged["kept"] = k
    merged["mean"] = total / (merged["n"] + k)
    merged.loc[has, "min"] = np.minimum(merged.loc[has, "min"], merged.loc[has, "kmin"])
    merged.loc[has, "max"] = np.maximum(merged.loc[has, "max"], merged.loc[has, "kmax"])
    return merged[list(BAND_COLUMNS)]


def _slot_frame(rows: Sequence[Any], res: int) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["code", "unit", "slot", "n", "min", "max", "total"])
    if frame.empty:
        return pd.DataFrame({c: [] for c in BAND_COLUMNS})
    frame["start_ms"] = frame["slot"].astype(np.int64) * res
    frame["end_ms"] = frame["start_ms"] + res
    frame["n"] = frame["n"].astype(np.int64)
    frame["mean"] = frame["total"].astype(np.float64) / frame["n"]
    frame["kept"] = np.int64(0)
    for column in ("min", "max"):
        frame[column] = frame[column].astype(np.float64)
    return frame[list(BAND_COLUMNS)].sort_values(["code", "start_ms"], ignore_index=True)


def _summary_bands(
    conn: Connection, patient: str, since_ms: int, until_ms: int, res: int
) -> tuple[pd.DataFrame, int]:
    s = _summary.c
    where = (
        s.patient == patient,
        s.state == SummaryState.ACTIVE,
        s.bucket_end_ms > since_ms,
        s.bucket_start_ms < until_ms,
    )
    slot = (s.bucket_start_ms // literal(res)).label("slot")
    query = (
        select(
            s.code,
            s.unit,
            slot,
            func.sum(s.n),
            func.min(s.min),
            func.max(s.max),
            func.sum(s.mean * s.n),
        )
        .where(*where, s.band != "artifact")
        .group_by(s.code, s.unit, slot)
    )
    artifacts = conn.execute(
        select(func.count()).select_from(_summary).where(*where, s.band == "artifact")
    ).scalar_one()
    return _slot_frame(conn.execute(query).all(), res), int(artifacts)


def _hot_slots(
    conn: Connection, patient: str, since_ms: int, until_ms: int, res: int
) -> pd.DataFrame:
    r = _reading.c
    slot = (r.effective_ms // literal(res)).label("slot")
    query = (
        select(
            r.code,
            r.unit,
            slot,
            func.count(),
            func.min(r.value),
            func.max(r.value),
            func.sum(r.value),
        )
        .where(
            r.patient == patient,
            r.state == ReadingState.RAW,
            r.effective_ms >= since_ms,
            r.effective_ms < until_ms,
        )
        .group_by(r.code, r.unit, slot)
    )
    return _slot_frame(conn.execute(query).all(), res)


def _retained(
    conn: Connection,
    policy: Policy,
    patient: str,
    since_ms: int,
    until_ms: int,
    tz: tzinfo,
    limit: int,
) -> tuple[pd.DataFrame, int]:
    """Retained readings with their reasons from the latest run that gave any; the ``limit``
    strongest (rule, detector, artifact, then context) when there are more."""
    r, t = _reading.c, _retention.c
    anchor = _reading.alias("anchor")
    query = (
        select(
            r.id,
            r.code,
            r.unit,
            r.effective_ms,
            r.value,
            t.kind,
            t.rule,
            t.score,
            t.threshold,
            t.news2,
            t.context_of,
            t.run_id,
            anchor.c.code.label("a_code"),
            anchor.c.effective_ms.label("a_ms"),
            anchor.c.value.label("a_value"),
        )
        .join(_retention, t.reading_id == r.id)
        .outerjoin(anchor, anchor.c.id == t.context_of)
        .where(
            r.patient == patient,
            r.state == ReadingState.RETAINED,
            r.effective_ms >= since_ms,
            r.effective_ms < until_ms,
        )
        .order_by(r.effective_ms, r.id, t.id)
    )
    rows = conn.execute(query).all()
    if not rows:
        return pd.DataFrame({c: [] for c in RETAINED_COLUMNS}), 0
    latest_run: dict[int, int] = {}
    for row in rows:
        latest_run[row.id] = max(latest_run.get(row.id, 0), row.run_id)
    kept: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row.run_id != latest_run[row.id]:
            continue
        anchor_of = (row.a_code, int(row.a_ms), float(row.a_value)) if row.a_code else None
        why = explain_reason(
            row, row.code, int(row.effective_ms), float(row.value), policy, tz, anchor_of
        )
        entry = kept.setdefault(
            row.id,
            {
                "id": int(row.id),
                "code": row.code,
                "unit": row.unit,
                "t_ms": int(row.effective_ms),
                "value": float(row.value),
                "kind": row.kind,
                "why": [],
                "run_id": int(row.run_id),
                "artifact": False,
            },
        )
        entry["artifact"] = entry["artifact"] or row.kind == "artifact"
        if KIND_ORDER.index(row.kind) < KIND_ORDER.index(entry["kind"]):
            entry["kind"] = row.kind
        entry["why"].append(why)
    frame = pd.DataFrame([{**e, "why": "; ".join(e["why"])} for e in kept.values()])
    total = len(frame)
    if total > limit:
        strength = frame["kind"].map(KIND_ORDER.index)
        frame = frame.loc[strength.sort_values(kind="stable").index[:limit]]
        frame = frame.sort_values(["t_ms", "id"], ignore_index=True)
    return frame[list(RETAINED_COLUMNS)], total


def _episodes(
    conn: Connection, policy: Policy, patient: str, since_ms: int, until_ms: int, tz: tzinfo
) -> pd.DataFrame:
    e = _episode.c
    rows = conn.execute(
        select(e.id, e.run_id, e.start_ms, e.end_ms, e.worst_json, e.peak_news2, e.reasons)
        .where(e.patient == patient, e.end_ms >= since_ms, e.start_ms < until_ms)
        .order_by(e.start_ms)
    ).all()
    return pd.DataFrame(
        [
            {
                "id": int(row.id),
                "run_id": int(row.run_id),
                "start_ms": int(row.start_ms),
                "end_ms": int(row.end_ms),
                "peak_news2": row.peak_news2,
                "text": describe_episode(
                    row.start_ms, row.end_ms, json.loads(row.worst_json), row.peak_news2, policy, tz
                ),
                "reasons": row.reasons,
            }
            for row in rows
        ],
        columns=["id", "run_id", "start_ms", "end_ms", "peak_news2", "text", "reasons"],
    )
