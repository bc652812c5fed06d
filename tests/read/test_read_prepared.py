"""Digests prepared ahead: the prepared and the live digest agree, a late reading (or a
retraction, a hold, a consolidation) makes the prepared one stale, and the dashboard's
``current_digest`` says which it shows. Not-assessed patients are listed, never dropped."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from medsleep.archive.holds import add_hold
from medsleep.read.digest import NightDigest, night_digest, night_ending
from medsleep.read.prepared import current_digest, nights_between, prepare_digest, prepare_nights
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.tables import PREPARED_DIGEST
from medsleep.timefmt import iso
from tests.dashboard.test_dashboard_data import PATIENTS, consolidated_sample, copy_store
from tests.helpers import observation
from tests.read.test_read_digest import NIGHT, POLICY, SPO2, UTC, ZURICH, _ingest, _minutes

AFTER = NIGHT[1] + 3_600_000  # 08:00, the morning after


def _comparable(digest: NightDigest) -> list[object]:
    return [replace(r, reviews=()) for r in digest.rows]


def _prepared_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(PREPARED_DIGEST)).scalar_one())


def test_the_prepared_digest_agrees_with_the_live_one_until_a_late_reading(
    engine: Engine, tmp_path: Path
) -> None:
    desaturation = {240 + i: 86.0 for i in range(20)}
    _ingest(engine, tmp_path, _minutes("p1", SPO2, "%", desaturation, 97)
            + _minutes("p2", "8867-4", "/min", {}, 70))  # fmt: skip
    prepared = prepare_digest(engine, POLICY, UTC, *NIGHT, now_ms=AFTER)
    digest, source = current_digest(engine, POLICY, UTC, *NIGHT, now_ms=AFTER + 1)
    assert source.prepared
    assert source.computed_ms == AFTER
    assert _comparable(digest) == _comparable(prepared)
    assert _comparable(digest) == _comparable(night_digest(engine, POLICY, UTC, *NIGHT))

    # A late reading of that night: p2's heart rate at 03:00 was 135 /min.
    late = observation("p2-late", code="8867-4", unit="/min", patient="p2", value=135.0,
                       when=iso(NIGHT[0] + 5 * 3_600_000))  # fmt: skip
    ingest_dir = tmp_path / "late"
    ingest_dir.mkdir()
    _ingest(engine, ingest_dir, [late])
    digest, source = current_digest(engine, POLICY, UTC, *NIGHT, now_ms=AFTER + 2)
    assert not source.prepared
    assert source.reason == "readings changed since it was prepared"
    live = night_digest(engine, POLICY, UTC, *NIGHT)
    assert _comparable(digest) == _comparable(live)
    assert {r.patient: r.peak_news2 for r in digest.rows}["p2"] == 3  # HR 135 scores 3
    # The live digest of an ended night is stored for the next viewer.
    digest, source = current_digest(engine, POLICY, UTC, *NIGHT, now_ms=AFTER + 3)
    assert source.prepared
    assert source.computed_ms == AFTER + 2
    assert _prepared_count(engine) == 1


def test_a_hold_makes_the_prepared_digest_stale(engine: Engine, tmp_path: Path) -> None:
    _ingest(engine, tmp_path, _minutes("p1", "8867-4", "/min", {}, 72))
    prepare_digest(engine, POLICY, UTC, *NIGHT, now_ms=AFTER)
    add_hold(Store(engine, clock=lambda: AFTER, actor="legal"), "p1", "case 12")
    digest, source = current_digest(engine, POLICY, UTC, *NIGHT, now_ms=AFTER + 1)
    assert not source.prepared
    assert [r.status for r in digest.rows] == ["held"]


def test_a_night_under_way_is_scored_live_and_not_stored(engine: Engine, tmp_path: Path) -> None:
    _ingest(engine, tmp_path, _minutes("p1", "8867-4", "/min", {}, 72))
    digest, source = current_digest(engine, POLICY, UTC, NIGHT[0], NIGHT[1] - 60_000,
                                    now_ms=NIGHT[1] - 60_000, in_progress=True)  # fmt: skip
    assert not source.prepared
    assert "not over" in source.reason
    assert digest.in_progress
    assert [r.patient for r in digest.rows] == ["p1"]
    assert _prepared_count(engine) == 0


def test_patients_without_readings_that_night_are_listed_as_not_assessed(
    engine: Engine, tmp_path: Path
) -> None:
    day_before = dict.fromkeys(range(9 * 60), 72.0)
    earlier = [
        {**r, "effectiveDateTime": iso(NIGHT[0] - 86_400_000 + i * 60_000)}
        for i, r in enumerate(_minutes("p3", "8867-4", "/min", day_before, 72))
    ]
    _ingest(engine, tmp_path, _minutes("p1", SPO2, "%", {60: 86.0}, 97) + earlier)
    digest = night_digest(engine, POLICY, UTC, *NIGHT)
    assert [(r.patient, r.status) for r in digest.rows] == [
        ("p1", "provisional"),
        ("p3", "not-assessed"),
    ]
    assert digest.rows[-1].band == "none"
    assert digest.rows[-1].episodes == ()
    # Prepared digests keep them too (read live, so a new patient is never missing).
    prepare_digest(engine, POLICY, UTC, *NIGHT, now_ms=AFTER)
    prepared, source = current_digest(engine, POLICY, UTC, *NIGHT, now_ms=AFTER)
    assert source.prepared
    assert [(r.patient, r.status) for r in prepared.rows] == [
        ("p1", "provisional"),
        ("p3", "not-assessed"),
    ]


def test_nights_between_are_the_windows_on_the_local_clock() -> None:
    since, until = night_ending(date(2026, 1, 6), ZURICH)
    assert nights_between(since, until, ZURICH) == [(since, until)]
    assert len(nights_between(since - 3 * 86_400_000, until, ZURICH)) == 4


def test_preparing_the_consolidated_sample_agrees_with_live_and_skips_current_nights(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    url = copy_store(consolidated_sample(tmp_path_factory), tmp_path / "store")
    engine = open_store(url)
    try:
        since, until = night_ending(date(2026, 1, 6), ZURICH)
        done = prepare_nights(engine, POLICY, ZURICH, since_ms=since, until_ms=until,
                              now_ms=until + 1)  # fmt: skip
        assert len(done) == 1
        assert sorted(r.patient for r in done[0].rows) == PATIENTS
        again = prepare_nights(engine, POLICY, ZURICH, since_ms=since, until_ms=until,
                               now_ms=until + 2)  # fmt: skip
        assert again == []  # still current: nothing to do
        digest, source = current_digest(engine, POLICY, ZURICH, since, until, now_ms=until + 3)
        assert source.prepared
        live = night_digest(engine, POLICY, ZURICH, since, until)
        assert _comparable(digest) == _comparable(live)
    finally:
        engine.dispose()
