"""The morning digest's read model: the night window on the hospital's clock, one row per
patient from hot and consolidated readings alike, artifacts left out, held patients listed,
reviews recorded with their audit event (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select, update

from medsleep.archive.holds import add_hold
from medsleep.audit import iter_events, verify_chain
from medsleep.consolidate.job import consolidate
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.read.digest import night_digest, night_ending, night_window, risk_band
from medsleep.read.reviews import ReviewError, add_review, record_patient_view
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.models import Reading, Retention
from medsleep.timefmt import iso, ms_to_datetime, parse_iso_ms
from tests.dashboard.test_dashboard_data import PATIENTS, consolidated_sample
from tests.helpers import observation, write_ndjson

POLICY = load_policy()
UTC, ZURICH = ZoneInfo("UTC"), ZoneInfo("Europe/Zurich")
READING = Reading.__table__  # type: ignore[attr-defined]
RETENTION = Retention.__table__  # type: ignore[attr-defined]
NIGHT = (parse_iso_ms("2026-01-05T22:00:00Z"), parse_iso_ms("2026-01-06T07:00:00Z"))
SPO2 = "59408-5"


def test_last_night_is_the_latest_night_that_ended_or_the_one_under_way() -> None:
    morning = parse_iso_ms("2026-03-02T09:30:00+01:00")
    start, end, live = night_window(morning, ZURICH)
    assert (iso(start), iso(end), live) == ("2026-03-01T21:00:00Z", "2026-03-02T06:00:00Z", False)
    small_hours = parse_iso_ms("2026-03-02T02:00:00+01:00")
    start, end, live = night_window(small_hours, ZURICH)
    assert (iso(start), end, live) == ("2026-03-01T21:00:00Z", small_hours, True)
    # Summer time starts in the night of 28-29 March 2026: that night is an hour shorter.
    start, end = night_ending(date(2026, 3, 29), ZURICH)
    assert (end - start) / 3_600_000 == 8


@settings(max_examples=200, deadline=None)
@given(
    anchor=st.integers(parse_iso_ms("2026-01-01T00:00:00Z"), parse_iso_ms("2027-01-01T00:00:00Z")),
    start_hour=st.integers(18, 23),
    end_hour=st.integers(5, 9),
)
def test_night_window_is_on_the_local_clock_and_never_after_the_anchor(
    anchor: int, start_hour: int, end_hour: int
) -> None:
    night = (time(start_hour), time(end_hour))
    start, end, live = night_window(anchor, ZURICH, night)
    assert start < end <= anchor
    assert ms_to_datetime(start).astimezone(ZURICH).time() == night[0]
    if live:
        assert end == anchor
    else:
        assert ms_to_datetime(end).astimezone(ZURICH).time() == night[1]
        next_day = ms_to_datetime(end).astimezone(ZURICH).date().toordinal() + 1
        _, next_end = night_ending(date.fromordinal(next_day), ZURICH, night)
        assert next_end > anchor  # no later night has ended


def _minutes(
    patient: str, code: str, unit: str, values: dict[int, float], default: float
) -> list[dict[str, object]]:
    """One reading a minute over the night 22:00-07:00 UTC; ``values`` overrides minutes."""
    out = []
    for minute in range(9 * 60):
        ms = NIGHT[0] + minute * 60_000
        out.append(
            observation(
                f"{patient}-{code}-{minute}",
                code=code,
                unit=unit,
                patient=patient,
                value=values.get(minute, default),
                when=iso(ms),
            )
        )
    return out


def _ingest(engine: Engine, tmp_path: Path, resources: list[dict[str, object]]) -> None:
    ingest_paths(engine, [str(write_ndjson(tmp_path / "night.ndjson", resources))])


def test_a_night_not_consolidated_yet_is_scored_from_raw_readings(
    engine: Engine, tmp_path: Path
) -> None:
    desaturation = {240 + i: 86.0 for i in range(20)}  # 02:00-02:19
    _ingest(
        engine,
        tmp_path,
        _minutes("p1", SPO2, "%", desaturation, 97)
        + _minutes("p1", "8867-4", "/min", {}, 72)
        + _minutes("p2", "8867-4", "/min", {}, 70),
    )
    digest = night_digest(engine, POLICY, UTC, *NIGHT)
    assert [r.patient for r in digest.rows] == ["p1", "p2"]  # worst first, both listed
    p1, p2 = digest.rows
    assert (p1.status, p1.peak_news2, p1.band) == ("provisional", 3, "low-medium")
    assert p1.peak_ms == parse_iso_ms("2026-01-06T02:00:00Z")
    assert p1.parameter_peaks["spo2"] == 3
    assert p1.worst == ("SpO2 down to 86 %",)
    assert len(p1.serious) == 1
    episode = p1.serious[0]
    assert episode.provisional
    assert episode.start_ms <= parse_iso_ms("2026-01-06T02:00:00Z") < episode.end_ms
    assert episode.text.startswith("6 Jan 0")  # dated, on the local clock
    assert "SpO2 down to 86 %" in episode.text
    assert (p2.status, p2.peak_news2, p2.band, p2.episodes) == ("provisional", 0, "low", ())


def test_artifacts_never_count_toward_episodes_or_news2(engine: Engine, tmp_path: Path) -> None:
    sensor_off = {100 + i: 0.0 for i in range(5)}  # SpO2 0 %: implausible, a sensor-off run
    spike = {180: 280.0}  # HR 72 -> 280 -> 72: plausible, an artifact by rate of change
    _ingest(
        engine,
        tmp_path,
        _minutes("p1", SPO2, "%", sensor_off, 97) + _minutes("p1", "8867-4", "/min", spike, 72),
    )
    before = night_digest(engine, POLICY, UTC, *NIGHT).rows[0]
    assert before.peak_news2 == 0  # the spike would score HR 3, but it is an artifact
    assert before.artifacts_left_out == 6  # neither it nor the sensor-off run counted
    assert all("SpO2" not in e.text for e in before.episodes)

    # Consolidation kept the spike as an artifact (what rate-of-change detection writes).
    with engine.begin() as conn:
        spike_id = conn.execute(select(READING.c.id).where(READING.c.value == 280.0)).scalar_one()
        conn.execute(update(READING).where(READING.c.id == spike_id).values(state="retained"))
        conn.execute(
            insert(RETENTION).values(
                run_id=1, reading_id=spike_id, kind="artifact", rule="implausible-jump"
            )
        )
    after = night_digest(engine, POLICY, UTC, *NIGHT).rows[0]
    assert (after.peak_news2, after.band, after.episodes) == (0, "low", ())
    assert after.artifacts_left_out == 6
    assert after.worst == ()


def test_held_patients_are_listed_even_without_readings(engine: Engine, tmp_path: Path) -> None:
    _ingest(engine, tmp_path, _minutes("p1", "8867-4", "/min", {}, 72))
    add_hold(Store(engine, clock=lambda: 0, actor="legal"), "p9", "case 12")
    rows = {r.patient: r for r in night_digest(engine, POLICY, UTC, *NIGHT).rows}
    assert set(rows) == {"p1", "p9"}
    assert rows["p9"].status == "held"
    assert rows["p9"].peak_news2 == 0


def test_reviews_are_recorded_audited_and_shown(engine: Engine, tmp_path: Path) -> None:
    _ingest(engine, tmp_path, _minutes("p1", "8867-4", "/min", {}, 72))
    seq = add_review(
        engine, patient="p1", night=NIGHT, by="ana", now_ms=NIGHT[1] + 1, comment=" all fine "
    )
    add_review(engine, patient="p1", night=NIGHT, by="bo", now_ms=NIGHT[1] + 2,
               episode_start_ms=NIGHT[0] + 60_000)  # fmt: skip
    with pytest.raises(ReviewError, match="at most"):
        add_review(engine, patient="p1", night=NIGHT, by="ana", now_ms=0, comment="x" * 2001)
    row = night_digest(engine, POLICY, UTC, *NIGHT).rows[0]
    assert [(m.reviewer, m.comment, m.episode_start_ms) for m in row.reviews] == [
        ("ana", "all fine", None),
        ("bo", "", NIGHT[0] + 60_000),
    ]
    assert row.night_reviewed
    other_night = night_digest(engine, POLICY, UTC, NIGHT[0] + 86_400_000, NIGHT[1] + 86_400_000)
    assert all(not r.reviews for r in other_night.rows)
    record_patient_view(engine, patient="p1", by="ana", now_ms=NIGHT[1] + 3,
                        since_ms=NIGHT[0], until_ms=NIGHT[1])  # fmt: skip
    with engine.connect() as conn:
        events = [(e.seq, e.actor, e.action, json.loads(e.details_json)) for e in iter_events(conn)]
        assert verify_chain(conn).ok
    assert events[-3][:3] == (seq, "ana", "review.add")
    assert events[-3][3] == {"patient": "p1", "night_start_ms": NIGHT[0],
                             "night_end_ms": NIGHT[1], "comment": "all fine"}  # fmt: skip
    assert events[-1][1:3] == ("ana", "dashboard.view_patient")


def test_the_consolidated_sample_lists_every_patient_as_assessed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = consolidated_sample(tmp_path_factory)
    engine = open_store(f"sqlite:///{folder / 'medsleep.db'}")
    try:
        since, until = night_ending(date(2026, 1, 6), ZURICH)
        digest = night_digest(engine, POLICY, ZURICH, since, until)
    finally:
        engine.dispose()
    assert sorted(r.patient for r in digest.rows) == PATIENTS
    assert all(r.status == "assessed" for r in digest.rows)
    ranks = [(("high", "medium", "low-medium", "low").index(r.band), -r.peak_news2)
             for r in digest.rows]  # fmt: skip
    assert ranks == sorted(ranks)
    for row in digest.rows:
        assert all(e.text[:6].strip()[0].isdigit() for e in row.episodes)  # every line dated
        assert all(not e.provisional for e in row.episodes)


@pytest.mark.parametrize(
    ("aggregate", "worst", "band"),
    [(0, 0, "low"), (4, 2, "low"), (3, 3, "low-medium"), (5, 3, "medium"), (7, 1, "high")],
)
def test_rcp_risk_bands(aggregate: int, worst: int, band: str) -> None:
    assert risk_band(aggregate, worst) == band


def test_an_old_store_gains_the_review_table_on_open(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from medsleep.store.engine import _alembic_config, create_store_engine

    old = create_store_engine(db_url)
    with old.begin() as conn:
        command.upgrade(_alembic_config(conn), "0004")  # the schema before this change
    assert "review" not in inspect(old).get_table_names()
    old.dispose()
    store = open_store(db_url)
    try:
        assert "review" in inspect(store).get_table_names()
        add_review(store, patient="p1", night=NIGHT, by="ana", now_ms=0)
    finally:
        store.dispose()


def test_readings_kept_only_as_too_sparse_open_no_episode(engine: Engine, tmp_path: Path) -> None:
    # Respiratory rate twice an hour, all normal: too few a cell to summarise, so they stay
    # raw as "sparse". They count toward NEWS2 (score 0 here) but are not notable.
    sparse = [
        observation(f"rr-{i}", code="9279-1", unit="/min", patient="p1", value=16.0,
                    when=iso(NIGHT[0] + i * 30 * 60_000))
        for i in range(18)
    ]  # fmt: skip
    _ingest(engine, tmp_path, sparse)
    store = Store(engine, tmp_path / "archive", clock=lambda: NIGHT[1] + 3_600_000)
    report = consolidate(store, POLICY, until_ms=NIGHT[1])
    assert report.sparse == 18  # what the test is about: every reading kept as too sparse
    row = night_digest(engine, POLICY, UTC, *NIGHT).rows[0]
    assert (row.patient, row.peak_news2, row.episodes) == ("p1", 0, ())
