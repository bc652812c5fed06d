"""Digests prepared ahead — sleep-time compute — so that the morning opens at once.

After a consolidation run the edge (``medsleep consolidate``, ``medsleep sleep``, ``medsleep
digest prepare``) calls ``prepare_nights``: each ended night the run touched is scored with
``night_digest`` and stored with its *watermark*, a fingerprint of every input of that night
(its hot and retained readings and active summaries, the legal holds). The dashboard calls
``current_digest``: the stored digest while the watermark still matches, else a live one
(stored in turn when the night has ended), and says which it shows. A late reading, a new
version, a retraction, a consolidation or restore of the night, a hold added or released —
each changes the watermark. Reviews and patient headers are read live, never stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from datetime import time, tzinfo
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from medsleep.archive.holds import held_patients
from medsleep.policy import Policy
from medsleep.read.digest import (
    LOOKBACK_MS,
    NIGHT,
    DigestEpisode,
    DigestRow,
    NightDigest,
    newest_data_ms,
    night_digest,
    night_ending,
    with_live_parts,
)
from medsleep.store.tables import (
    HOT_STATES,
    PREPARED_DIGEST,
    READING,
    RUN,
    SUMMARY,
    SummaryState,
)
from medsleep.timefmt import ms_to_datetime

_prepared = PREPARED_DIGEST
MAX_NIGHTS = 7
"""At most this many nights (the most recent) are prepared after one run."""


@dataclass(frozen=True)
class DigestSource:
    """Which digest is shown: ``prepared`` (stored at ``computed_ms``, data unchanged since)
    or computed ``live`` now, with why in ``reason``."""

    prepared: bool
    computed_ms: int
    reason: str


def tz_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def night_watermark(conn: Connection, since_ms: int, until_ms: int) -> str:
    """A fingerprint of everything ``night_digest`` reads for ``[since_ms, until_ms)``.

    Ids only grow, so a new or re-sent reading raises the max and sum; a retraction or a
    consolidation (readings leaving the hot store) changes the count; a restore brings
    readings back and retires summaries. One indexed-or-sequential pass each (0.06 s on a
    million readings)."""
    r, s = READING.c, SUMMARY.c
    low = since_ms - LOOKBACK_MS
    readings = conn.execute(
        select(func.count(), func.max(r.id), func.sum(r.id)).where(
            r.state.in_(HOT_STATES), r.effective_ms >= low, r.effective_ms < until_ms
        )
    ).one()
    summaries = conn.execute(
        select(func.count(), func.max(s.id), func.sum(s.id)).where(
            s.state == SummaryState.ACTIVE, s.bucket_end_ms > low, s.bucket_start_ms < until_ms
        )
    ).one()
    holds = hashlib.sha256("\n".join(sorted(held_patients(conn))).encode()).hexdigest()[:16]
    parts = [*(int(v or 0) for v in readings), *(int(v or 0) for v in summaries)]
    return f"r{parts[0]}:{parts[1]}:{parts[2]};s{parts[3]}:{parts[4]}:{parts[5]};h{holds}"


def prepare_digest(
    engine: Engine,
    policy: Policy,
    tz: tzinfo,
    since_ms: int,
    until_ms: int,
    *,
    now_ms: int,
) -> NightDigest:
    """Score the night ``[since_ms, until_ms)`` and store it with its watermark (replacing an
    older one). Nothing is stored when the data changed while it was being scored."""
    with engine.connect() as conn:
        before = night_watermark(conn, since_ms, until_ms)
    digest = night_digest(engine, policy, tz, since_ms, until_ms)
    with engine.begin() as conn:
        if night_watermark(conn, since_ms, until_ms) != before:
            return digest  # a reading arrived meanwhile: the next look scores it again
        key = _key(since_ms, until_ms, tz, policy)
        conn.execute(delete(_prepared).where(*_matching(key)))
        conn.execute(
            insert(_prepared).values(
                **key, watermark=before, computed_ms=now_ms, rows_json=_rows_json(digest.rows)
            )
        )
    return digest


def current_digest(
    engine: Engine,
    policy: Policy,
    tz: tzinfo,
    since_ms: int,
    until_ms: int,
    *,
    now_ms: int,
    in_progress: bool = False,
) -> tuple[NightDigest, DigestSource]:
    """The prepared digest of the night while it is still current, else a live one (stored
    for the next viewer when the night has ended)."""
    key = _key(since_ms, until_ms, tz, policy)
    with engine.connect() as conn:
        stored = conn.execute(
            select(_prepared.c.watermark, _prepared.c.computed_ms, _prepared.c.rows_json).where(
                *_matching(key)
            )
        ).one_or_none()
        mark = night_watermark(conn, since_ms, until_ms) if stored is not None else None
        if stored is not None and stored.watermark == mark:
            rows = _rows_from_json(stored.rows_json)
            digest = NightDigest(since_ms, until_ms, in_progress, newest_data_ms(engine), rows)
            source = DigestSource(True, int(stored.computed_ms), "no reading of the night changed")
            return with_live_parts(conn, digest, policy), source
    reason = "no prepared digest" if stored is None else "readings changed since it was prepared"
    if in_progress or until_ms > now_ms:  # a night under way changes by the minute
        digest = night_digest(engine, policy, tz, since_ms, until_ms, in_progress=in_progress)
        return digest, DigestSource(False, now_ms, f"{reason}; the night is not over")
    digest = prepare_digest(engine, policy, tz, since_ms, until_ms, now_ms=now_ms)
    return digest, DigestSource(False, now_ms, reason)


def nights_between(
    since_ms: int, until_ms: int, tz: tzinfo, night: tuple[time, time] = NIGHT
) -> list[tuple[int, int]]:
    """Every night window that overlaps ``[since_ms, until_ms)``, oldest first."""
    first = ms_to_datetime(since_ms).astimezone(tz).date()
    last = ms_to_datetime(until_ms).astimezone(tz).date()
    out = []
    for offset in range((last - first).days + 2):
        start, end = night_ending(first.fromordinal(first.toordinal() + offset), tz, night)
        if start < until_ms and end > since_ms:
            out.append((start, end))
    return out


def prepare_nights(
    engine: Engine,
    policy: Policy,
    tz: tzinfo,
    *,
    since_ms: int,
    until_ms: int,
    now_ms: int,
    night: tuple[time, time] = NIGHT,
) -> list[NightDigest]:
    """Prepare every night that overlaps ``[since_ms, until_ms)`` and has ended by
    ``now_ms`` and whose stored digest (if any) is no longer current."""
    done = []
    for start, end in nights_between(since_ms, until_ms, tz, night):
        if end > now_ms:
            continue
        key = _key(start, end, tz, policy)
        with engine.connect() as conn:
            stored = conn.execute(
                select(_prepared.c.watermark).where(*_matching(key))
            ).scalar_one_or_none()
            if stored is not None and stored == night_watermark(conn, start, end):
                continue
        done.append(prepare_digest(engine, policy, tz, start, end, now_ms=now_ms))
    return done


def prepare_after_run(
    engine: Engine,
    policy: Policy,
    tz: tzinfo,
    run_id: int,
    *,
    now_ms: int,
    night: tuple[time, time] = NIGHT,
) -> list[NightDigest]:
    """Prepare the nights consolidation run ``run_id`` covered — from the previous run's
    ``until`` (the first run: the store's first data) — and every night that has ended since,
    the ``MAX_NIGHTS`` most recent at most."""
    r = RUN.c
    with engine.connect() as conn:
        if conn.execute(select(r.id).where(r.id == run_id)).scalar_one_or_none() is None:
            return []
        previous = conn.execute(
            select(func.max(r.until_ms)).where(
                r.id < run_id, r.status.in_(("committed", "partial"))
            )
        ).scalar_one_or_none()
    span = data_span(engine)
    if span is None:
        return []
    # The run consolidated what lay before its ``until`` and after the previous run's: on a
    # first run, everything (the most recent nights of it).
    since = max(int(previous), span[0]) if previous is not None else span[0]
    last = min(now_ms, span[1] + 1)
    if since >= last:
        return []
    nights = [n for n in nights_between(since, last, tz, night) if n[1] <= now_ms]
    since = nights[-MAX_NIGHTS][0] if len(nights) > MAX_NIGHTS else since
    return prepare_nights(engine, policy, tz, since_ms=since, until_ms=last, now_ms=now_ms,
                          night=night)  # fmt: skip


def data_span(engine: Engine) -> tuple[int, int] | None:
    """The first and last reading or summary time in the store (None when it is empty)."""
    r, s = READING.c, SUMMARY.c
    with engine.connect() as conn:
        hot = conn.execute(
            select(func.min(r.effective_ms), func.max(r.effective_ms)).where(
                r.state.in_(HOT_STATES)
            )
        ).one()
        kept = conn.execute(
            select(func.min(s.bucket_start_ms), func.max(s.bucket_end_ms)).where(
                s.state == SummaryState.ACTIVE
            )
        ).one()
    firsts = [int(v) for v in (hot[0], kept[0]) if v is not None]
    lasts = [int(v) for v in (hot[1], kept[1]) if v is not None]
    return (min(firsts), max(lasts)) if firsts else None


def _key(since_ms: int, until_ms: int, tz: tzinfo, policy: Policy) -> dict[str, Any]:
    return {
        "night_start_ms": since_ms,
        "night_end_ms": until_ms,
        "tz": tz_name(tz),
        "policy_digest": policy.digest,
    }


def _matching(key: dict[str, Any]) -> list[ColumnElement[bool]]:
    """The conditions that pick the stored digest of ``key`` (a night, zone and policy)."""
    return [_prepared.c[k] == v for k, v in key.items()]


def _rows_json(rows: tuple[DigestRow, ...]) -> str:
    """The rows without what is read live (reviews, patient headers, not-assessed rows)."""
    kept = [
        {**asdict(replace(r, reviews=(), header=None)), "episodes": [asdict(e) for e in r.episodes]}
        for r in rows
        if r.status != "not-assessed"
    ]
    return json.dumps(kept, separators=(",", ":"))


def _rows_from_json(text: str) -> tuple[DigestRow, ...]:
    rows = []
    for item in json.loads(text):
        item["episodes"] = tuple(DigestEpisode(**e) for e in item["episodes"])
        item["worst"] = tuple(item["worst"])
        item["reviews"] = ()
        rows.append(DigestRow(**item))
    return tuple(rows)
