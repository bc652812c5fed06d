"""The morning digest: one row per patient for last night, worst first.

"Last night" is a night window on the hospital's clock (22:00–07:00 unless told otherwise),
the latest one that has ended by the anchor time (or the one in progress, so far). Every
reading of the window counts, consolidated or not:

- consolidated stretches through their retained readings and, for what was collapsed, each
  summary's first and last reading (all readings of a summary share its NEWS2 band);
- readings not consolidated yet (hot, or a held patient's) are classified here with
  consolidation's own ``classify_patient``, and what it would keep is marked *provisional*.

Readings kept (or that would be kept) as artifacts never count, neither toward episodes nor
toward NEWS2; implausible values never do either (``news2_steps`` drops them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Select, and_, case, func, select
from sqlalchemy.engine import Connection

from medsleep.archive.holds import held_patients
from medsleep.detect import ARTIFACT_BAND, classify_patient
from medsleep.detect.episodes import news2_steps, peak_news2
from medsleep.detect.rules import implausible_mask, news2_scores
from medsleep.errors import InputError
from medsleep.policy import Policy
from medsleep.read.patients import PatientHeader, patient_headers
from medsleep.read.reviews import ReviewMark, reviews_in
from medsleep.read.text import describe_worst, normal_range, span_text
from medsleep.store.tables import (
    HOT_STATES,
    READING,
    RETENTION,
    SUMMARY,
    ReadingState,
    SummaryState,
)
from medsleep.timefmt import ms_to_datetime, to_ms

_reading, _retention, _summary = READING, RETENTION, SUMMARY
_MINUTE = 60_000
NIGHT = (time(22, 0), time(7, 0))
"""The default night window, local time; it may cross midnight."""
LOOKBACK_MS = 60 * _MINUTE
"""Readings this long before the night still set the sub-scores it starts with."""
BANDS = ("high", "medium", "low-medium", "low")
"""RCP NEWS2 clinical risk, worst first: aggregate >= 7, 5-6, 3 in one parameter, 0-4."""
SERIOUS_PEAK = 5
NOT_ASSESSED = "not-assessed"


@dataclass(frozen=True)
class DigestEpisode:
    start_ms: int
    end_ms: int
    peak_news2: int
    worst_parameter_score: int
    text: str  # "31 Jan 02:14–02:31 SpO2 down to 86 %, HR up to 128 /min, NEWS2 7"
    provisional: bool  # found in readings not consolidated yet

    @property
    def serious(self) -> bool:
        return self.peak_news2 >= SERIOUS_PEAK or self.worst_parameter_score >= 3


@dataclass(frozen=True)
class DigestRow:
    """One patient's night. ``status``: ``assessed`` (consolidated), ``provisional`` (some or
    all of the night scored from readings not consolidated yet), ``held`` (legal hold: never
    consolidated, scored from its raw readings) or ``not-assessed`` (readings in the store, none
    in this night window: band ``none``). ``header``: name, MRN and birth date when a Patient
    resource gave them."""

    patient: str
    status: str
    band: str
    peak_news2: int
    peak_ms: int | None
    parameter_peaks: dict[str, int]
    worst: tuple[str, ...]
    episodes: tuple[DigestEpisode, ...]
    reviews: tuple[ReviewMark, ...]
    artifacts_left_out: int
    header: PatientHeader | None = None

    @property
    def serious(self) -> tuple[DigestEpisode, ...]:
        return tuple(e for e in self.episodes if e.serious)

    @property
    def minor(self) -> tuple[DigestEpisode, ...]:
        return tuple(e for e in self.episodes if not e.serious)

    @property
    def night_reviewed(self) -> bool:
        return any(r.episode_start_ms is None for r in self.reviews)


@dataclass(frozen=True)
class NightDigest:
    since_ms: int
    until_ms: int
    in_progress: bool  # the window is the night under way, up to the anchor
    newest_ms: int | None  # the newest reading or summary in the store
    rows: tuple[DigestRow, ...]


def parse_night(text: str | None) -> tuple[time, time]:
    """``22:00-07:00`` as (start, end) local times; empty or None: the default ``NIGHT``.

    >>> parse_night("21:30-06:00")
    (datetime.time(21, 30), datetime.time(6, 0))
    """
    if not text:
        return NIGHT
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError as exc:
        raise InputError(f"a night window looks like 22:00-07:00, got {text!r}") from exc
    return start, end


def night_window(
    anchor_ms: int, tz: tzinfo, night: tuple[time, time] = NIGHT
) -> tuple[int, int, bool]:
    """(start, end, in progress) of the latest night window that has ended by ``anchor_ms``,
    or of the one under way at ``anchor_ms`` (its end then is the anchor).

    >>> from zoneinfo import ZoneInfo
    >>> from medsleep.timefmt import iso, parse_iso_ms
    >>> s, e, _ = night_window(parse_iso_ms("2026-03-02T09:30:00+01:00"), ZoneInfo("Europe/Zurich"))
    >>> iso(s), iso(e)
    ('2026-03-01T21:00:00Z', '2026-03-02T06:00:00Z')
    """
    start_t, end_t = night
    local = ms_to_datetime(anchor_ms).astimezone(tz)
    for days_back in range(0, 3):
        day = local.date() - timedelta(days=days_back)
        end_day = day + timedelta(days=1) if end_t <= start_t else day
        start = to_ms(datetime.combine(day, start_t, tz))
        end = to_ms(datetime.combine(end_day, end_t, tz))
        if start <= anchor_ms < end:
            return start, anchor_ms, True
        if end <= anchor_ms:
            return start, end, False
    raise AssertionError("a night window ends within three days")  # pragma: no cover


def night_ending(day: Any, tz: tzinfo, night: tuple[time, time] = NIGHT) -> tuple[int, int]:
    """(start, end) of the night window that ends on the local date ``day``."""
    start_t, end_t = night
    start_day = day - timedelta(days=1) if end_t <= start_t else day
    return (
        to_ms(datetime.combine(start_day, start_t, tz)),
        to_ms(datetime.combine(day, end_t, tz)),
    )


def newest_data_ms(engine: Engine) -> int | None:
    """The newest reading time or summary end in the store (None when it is empty)."""
    with engine.connect() as conn:
        hot = conn.execute(
            select(func.max(_reading.c.effective_ms)).where(_reading.c.state.in_(HOT_STATES))
        ).scalar_one()
        kept = conn.execute(
            select(func.max(_summary.c.bucket_end_ms)).where(
                _summary.c.state == SummaryState.ACTIVE
            )
        ).scalar_one()
    values = [int(v) for v in (hot, kept) if v is not None]
    return max(values) if values else None


def night_digest(
    engine: Engine,
    policy: Policy,
    tz: tzinfo,
    since_ms: int,
    until_ms: int,
    *,
    in_progress: bool = False,
    patient: str | None = None,
) -> NightDigest:
    """Every patient with readings in ``[since_ms, until_ms)``, or on legal hold, ranked by
    RCP risk band, then peak NEWS2, then serious episodes; then every other patient with data
    in the store, as not assessed (or only ``patient``'s row)."""
    with engine.connect() as conn:
        readings = _hot_readings(conn, since_ms - LOOKBACK_MS, until_ms, patient)
        artifact_ids = _retained_artifacts(conn, since_ms - LOOKBACK_MS, until_ms, patient)
        sparse_ids = _retained_only_sparse(conn, since_ms, until_ms, patient)
        summaries = _summary_ends(conn, since_ms - LOOKBACK_MS, until_ms, patient)
        held = held_patients(conn)
        if patient is not None:
            held &= {patient}
        in_window = set(readings.loc[readings["t"] >= since_ms, "patient"]) | set(
            summaries.loc[summaries["t"] >= since_ms, "patient"]
        )
        patients = sorted(in_window | held)
        grouped = dict(tuple(readings.groupby("patient", sort=False)))
        summary_groups = dict(tuple(summaries.groupby("patient", sort=False)))
        rows = [
            _patient_row(
                patient,
                grouped.get(patient, readings.iloc[:0]),
                summary_groups.get(patient, summaries.iloc[:0]),
                artifact_ids,
                sparse_ids,
                patient in held,
                policy,
                tz,
                since_ms,
                until_ms,
            )
            for patient in patients
        ]
        digest = NightDigest(since_ms, until_ms, in_progress, None, tuple(rows))
        digest = with_live_parts(conn, digest, policy, patient)
    return replace(digest, newest_ms=newest_data_ms(engine))


def with_live_parts(
    conn: Connection, digest: NightDigest, policy: Policy, patient: str | None = None
) -> NightDigest:
    """The digest with what is read at every look, never prepared: the reviews of the night,
    the patient headers and the not-assessed patients (data in the store, none this night);
    ranked by RCP risk band, then peak NEWS2, then serious episodes, not-assessed last."""
    scored = [r for r in digest.rows if r.status != NOT_ASSESSED]
    listed = {r.patient for r in scored}
    others = sorted(set(_patients_with_data(conn, patient)) - listed)
    marks: dict[str, list[ReviewMark]] = {}
    for mark in reviews_in(conn, [*listed, *others], digest.since_ms):
        marks.setdefault(mark.patient, []).append(mark)
    headers = patient_headers(conn, [*listed, *others])
    rows = [
        replace(r, reviews=tuple(marks.get(r.patient, ())), header=headers.get(r.patient))
        for r in scored
    ]
    rows.sort(key=lambda r: (BANDS.index(r.band), -r.peak_news2, -len(r.serious), r.patient))
    rows += [
        DigestRow(
            patient=p,
            status=NOT_ASSESSED,
            band="none",
            peak_news2=0,
            peak_ms=None,
            parameter_peaks={},
            worst=(),
            episodes=(),
            reviews=tuple(marks.get(p, ())),
            artifacts_left_out=0,
            header=headers.get(p),
        )
        for p in others
    ]
    return replace(digest, rows=tuple(rows))


def _patients_with_data(conn: Connection, patient: str | None) -> list[str]:
    """Patients with readings or summaries anywhere in the store, one index seek each
    (``min(patient) > previous`` on the series indexes) instead of a scan of every reading
    (0.6 s on a million readings at load 8). A patient whose readings were all retracted or
    superseded counts too: there is data, none to assess."""
    found: set[str] = set()
    for table in (_reading, _summary):
        column = table.c.patient
        if patient is not None:
            hit = conn.execute(select(column).where(column == patient).limit(1)).scalar()
            found |= {str(hit)} if hit is not None else set()
            continue
        last = conn.execute(select(func.min(column))).scalar()
        while last is not None:
            found.add(str(last))
            last = conn.execute(select(func.min(column)).where(column > last)).scalar()
    return sorted(found)


def _hot_readings(
    conn: Connection, since_ms: int, until_ms: int, patient: str | None
) -> pd.DataFrame:
    r = _reading.c
    query = select(r.patient, r.id, r.code, r.effective_ms, r.value, r.state).where(
        r.state.in_(HOT_STATES),
        r.effective_ms >= since_ms,
        r.effective_ms < until_ms,
    )
    rows = conn.execute(query if patient is None else query.where(r.patient == patient)).all()
    names = ["patient", "id", "code", "t", "value", "state"]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    # Column by column: a frame from a list of row tuples infers every cell (seconds for the
    # night's ~100,000 readings); these arrays take a few milliseconds.
    return pd.DataFrame(
        {
            "patient": np.array(columns[0], dtype=object),
            "id": np.array(columns[1], dtype=np.int64),
            "code": np.array(columns[2], dtype=object),
            "t": np.array(columns[3], dtype=np.int64),
            "value": np.array(columns[4], dtype=np.float64),
            "state": np.array([str(v) for v in columns[5]], dtype=object),
        }
    )


def _current_reasons(since_ms: int, until_ms: int, patient: str | None) -> Select[Any]:
    """The retention rows that stand now (each retained reading's latest run) of the retained
    readings in ``[since_ms, until_ms)``, selecting their reading ids."""
    r, t = _reading.c, _retention.c
    latest = (
        select(t.reading_id, func.max(t.run_id).label("run_id")).group_by(t.reading_id).subquery()
    )
    query = (
        select(t.reading_id)
        .join(_reading, r.id == t.reading_id)
        .join(latest, and_(latest.c.reading_id == t.reading_id, latest.c.run_id == t.run_id))
        .where(
            r.state == ReadingState.RETAINED,
            r.effective_ms >= since_ms,
            r.effective_ms < until_ms,
        )
    )
    return query if patient is None else query.where(r.patient == patient)


def _retained_only_sparse(
    conn: Connection, since_ms: int, until_ms: int, patient: str | None
) -> set[int]:
    """Retained readings kept only because their cell was too sparse to summarise: normal
    readings, which count toward NEWS2 but are not notable (they open no episode)."""
    t = _retention.c
    query = (
        _current_reasons(since_ms, until_ms, patient)
        .group_by(t.reading_id)
        .having(func.sum(case((t.kind == "sparse", 0), else_=1)) == 0)
    )
    return {int(i) for i in conn.execute(query).scalars()}


def _retained_artifacts(
    conn: Connection, since_ms: int, until_ms: int, patient: str | None
) -> set[int]:
    """Retained readings whose latest run kept them (also) as an artifact."""
    query = _current_reasons(since_ms, until_ms, patient).where(_retention.c.kind == "artifact")
    return {int(i) for i in conn.execute(query).scalars()}


def _summary_ends(
    conn: Connection, since_ms: int, until_ms: int, patient: str | None
) -> pd.DataFrame:
    """The first and last reading of every active, non-artifact summary in the window, as
    readings (id -1): what a collapsed stretch contributes to NEWS2."""
    s = _summary.c
    query = select(s.patient, s.code, s.first_ms, s.first_value, s.last_ms, s.last_value).where(
        s.state == SummaryState.ACTIVE,
        s.band != "artifact",
        s.bucket_end_ms > since_ms,
        s.bucket_start_ms < until_ms,
    )
    rows = conn.execute(query if patient is None else query.where(s.patient == patient)).all()
    ends = [(p, c, int(t0), float(v0)) for p, c, t0, v0, _, _ in rows]
    ends += [(p, c, int(t1), float(v1)) for p, c, _, _, t1, v1 in rows]
    frame = pd.DataFrame(ends, columns=["patient", "code", "t", "value"])
    frame = frame[(frame["t"] >= since_ms) & (frame["t"] < until_ms)]
    return frame.assign(id=np.int64(-1), state="summary").astype(
        {"t": np.int64, "value": np.float64, "id": np.int64}
    )


def _patient_row(
    patient: str,
    readings: pd.DataFrame,
    summaries: pd.DataFrame,
    retained_artifacts: set[int],
    only_sparse: set[int],
    held: bool,
    policy: Policy,
    tz: tzinfo,
    since_ms: int,
    until_ms: int,
) -> DigestRow:
    raw = readings[readings["state"] == "raw"].reset_index(drop=True)
    decisions = classify_patient(raw[["id", "code", "t", "value"]], policy)
    kinds = decisions.reasons
    raw_artifacts = set(kinds.loc[kinds["kind"] == "artifact", "reading_id"].astype(np.int64))
    raw_artifacts |= set(raw.loc[(decisions.band == ARTIFACT_BAND).to_numpy(), "id"])  # sensor-off
    would_keep = set(kinds["reading_id"].astype(np.int64)) - raw_artifacts
    artifacts = raw_artifacts | (retained_artifacts & set(readings["id"]))
    clean = pd.concat(
        [readings[~readings["id"].isin(artifacts)], summaries], ignore_index=True
    ).sort_values("t", kind="stable", ignore_index=True)
    times, totals = news2_steps(clean, policy)
    peak = peak_news2(times, totals, since_ms, until_ms - 1) if times.size else 0
    night = clean[(clean["t"] >= since_ms) & (clean["t"] < until_ms)]
    notable = night[
        ((night["state"] == "retained") & ~night["id"].isin(artifacts | only_sparse))
        | night["id"].isin(would_keep)
    ]
    episodes = _episodes(notable, night, policy, tz, times, totals)
    parameter_peaks = _parameter_peaks(night, policy)
    provisional = not raw[(raw["t"] >= since_ms) & (raw["t"] < until_ms)].empty
    return DigestRow(
        patient=patient,
        status="held" if held else ("provisional" if provisional else "assessed"),
        band=risk_band(peak, max(parameter_peaks.values(), default=0)),
        peak_news2=peak,
        peak_ms=_peak_time(times, totals, peak, since_ms, until_ms) if peak else None,
        parameter_peaks=parameter_peaks,
        worst=tuple(_worst(night, policy)),
        episodes=tuple(episodes),
        reviews=(),
        artifacts_left_out=int(
            readings["id"].isin(artifacts).sum()
            - readings.loc[readings["t"] < since_ms, "id"].isin(artifacts).sum()
        ),
    )


def risk_band(aggregate: int, worst_parameter: int) -> str:
    """The RCP NEWS2 clinical risk of an aggregate and the worst single parameter score."""
    if aggregate >= 7:
        return "high"
    if aggregate >= 5:
        return "medium"
    return "low-medium" if worst_parameter >= 3 else "low"


def _peak_time(times: Any, totals: Any, peak: int, since_ms: int, until_ms: int) -> int:
    carried = int(np.searchsorted(times, since_ms, side="right")) - 1
    if carried >= 0 and totals[carried] == peak:
        return since_ms
    inside = (times >= since_ms) & (times < until_ms) & (totals == peak)
    return int(times[np.flatnonzero(inside)[0]])


def _by_code(frame: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """(code, positions) of each code in ``frame``: numpy positions, not pandas labels, so
    the per-code work below is array indexing (``.loc`` per group cost the digest seconds)."""
    codes = frame["code"].to_numpy(dtype=object)
    if codes.size == 0:
        return []
    uniques, inverse = np.unique(codes.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(uniques) + 1))
    return [(str(c), order[bounds[i] : bounds[i + 1]]) for i, c in enumerate(uniques)]


def _score_array(frame: pd.DataFrame, policy: Policy) -> np.ndarray:
    """NEWS2 sub-score per reading, by position (-1 without bands or when implausible)."""
    values = frame["value"].to_numpy(dtype=np.float64)
    out = np.full(values.size, -1, dtype=np.int64)
    for code, at in _by_code(frame):
        cp = policy.for_code(code)
        if cp is None or not cp.bands:
            continue
        v = values[at]
        s = news2_scores(v, cp.bands).astype(np.int64)
        s[implausible_mask(v, cp.plausible)] = -1
        out[at] = s
    return out


def _scores(frame: pd.DataFrame, policy: Policy) -> pd.Series:
    """NEWS2 sub-score per reading (-1 without bands or when implausible)."""
    return pd.Series(_score_array(frame, policy), index=frame.index, dtype=np.int64)


def _parameter_peaks(night: pd.DataFrame, policy: Policy) -> dict[str, int]:
    scores = _score_array(night, policy)
    peaks: dict[str, int] = {}
    for code, at in _by_code(night):
        cp = policy.for_code(code)
        valid = scores[at][scores[at] >= 0]
        if cp is None or valid.size == 0:
            continue
        name = cp.news2_parameter or cp.code
        peaks[name] = max(peaks.get(name, 0), int(valid.max()))
    return peaks


def _worst(frame: pd.DataFrame, policy: Policy) -> list[str]:
    """Per code, the worst abnormal value (highest sub-score, then furthest outside the
    normal range), in the policy's code order; normal codes are left out."""
    if frame.empty:
        return []
    scores = _score_array(frame, policy)
    values = frame["value"].to_numpy(dtype=np.float64)
    order = {code: i for i, code in enumerate(policy.codes)}
    texts: list[tuple[int, str]] = []
    for code, at in _by_code(frame):
        cp = policy.for_code(code)
        span = normal_range(cp)
        if cp is None or span is None:
            continue
        v = values[at]
        ok = ~implausible_mask(v, cp.plausible)
        if not ok.any():
            continue
        outside = np.maximum(np.maximum(span[0] - v, v - span[1]), 0.0)
        s = scores[at]
        key = np.where(ok, s * 1e12 + outside, -np.inf)
        best = int(np.argmax(key))
        if s[best] <= 0 and outside[best] <= 0:
            continue
        texts.append((order.get(code, len(order)), describe_worst(code, v[best], policy)))
    return [text for _, text in sorted(texts)]


def _episodes(
    notable: pd.DataFrame,
    night: pd.DataFrame,
    policy: Policy,
    tz: tzinfo,
    times: Any,
    totals: Any,
) -> Sequence[DigestEpisode]:
    """Notable readings within ``episode_gap_minutes`` of each other, across codes."""
    if notable.empty:
        return []
    notable = notable.sort_values("t", kind="stable")
    t = notable["t"].to_numpy(dtype=np.int64)
    gap = policy.episode_gap_minutes * _MINUTE
    which = np.concatenate(([0], np.cumsum(np.diff(t) > gap)))
    episodes = []
    for _, group in notable.groupby(which, sort=True):
        start, end = int(group["t"].iloc[0]), int(group["t"].iloc[-1])
        peak = peak_news2(times, totals, start, end) if len(times) else 0
        scores = _scores(group, policy)
        parts = [*_worst(group, policy), f"NEWS2 {peak}"]
        episodes.append(
            DigestEpisode(
                start_ms=start,
                end_ms=end,
                peak_news2=peak,
                worst_parameter_score=max(int(scores.max()), 0),
                text=f"{span_text(start, end, tz)} {', '.join(parts)}",
                provisional=bool((group["state"] == "raw").any()),
            )
        )
    return episodes
