"""The dashboard's query functions (medsleep.read.overview, views_patient, views_news2) on a
consolidated sample, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from medsleep.archive.holds import add_hold
from medsleep.archive.index import summarised_readings
from medsleep.detect.episodes import news2_steps
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.read.audit import audit_chain_status, recent_audit
from medsleep.read.overview import (
    compression_by_day,
    reasons_breakdown,
    retained_by_kind,
    store_overview,
)
from medsleep.read.patient import list_patients, patient_span, patient_view, resolution_ms
from medsleep.read.quarantine import quarantine_entries
from medsleep.read.runs import recent_runs, run_detail
from medsleep.store.engine import open_store
from medsleep.store.handle import Store as Handle
from medsleep.store.models import Episode, Reading, Summary
from medsleep.timefmt import parse_iso_ms
from tests.dashboard.test_dashboard_data import PATIENTS, build_sample, consolidated_sample
from tests.helpers import observation, write_ndjson
from tests.pg import create_database

POLICY = load_policy()
UTC = ZoneInfo("UTC")
READING = Reading.__table__  # type: ignore[attr-defined]
SUMMARY = Summary.__table__  # type: ignore[attr-defined]
EPISODE = Episode.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Store:
    engine: Engine
    archive: Path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """The consolidated sample (read only: tests that write use their own copy)."""
    if request.param == "sqlite":
        folder = consolidated_sample(tmp_path_factory)
        url, archive = f"sqlite:///{folder / 'medsleep.db'}", folder / "archive"
    else:
        url = create_database(request.getfixturevalue("postgres_admin_url"))
        archive = tmp_path_factory.mktemp("pg-archive")
        build_sample(url, archive)
    engine = open_store(url)
    yield Store(engine, archive)
    engine.dispose()


def _scalar(engine: Engine, query: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())  # type: ignore[call-overload]


def test_overview_counts_add_up(store: Store) -> None:
    o = store_overview(store.engine)
    retained = _scalar(store.engine, select(func.count()).where(READING.c.state == "retained"))
    summarised = _scalar(store.engine, select(func.sum(SUMMARY.c.n)))
    assert (o.patients, o.runs, o.quarantined, o.readings_raw) == (3, 1, 0, 0)
    assert o.readings_hot == o.readings_retained == retained > 0
    assert o.readings_collapsed == o.readings_archived == summarised
    assert o.readings_hot + o.readings_collapsed == 21_822  # every sample reading, once
    assert o.archive_files == 3
    assert o.archive_bytes > 0
    assert not o.empty


def test_compression_counts_every_reading_once(store: Store) -> None:
    frame = compression_by_day(store.engine)
    assert frame["readings"].sum() == 21_822
    assert (frame["ratio"] > 1).all()
    assert frame["day_ms"].is_monotonic_increasing


def test_recent_runs_carry_status_duration_and_counts(store: Store) -> None:
    runs = recent_runs(store.engine)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "committed"
    assert run["readings_in"] == run["retained"] + run["collapsed"] == 21_822
    assert run["seconds"] >= 0
    assert (run["shards_done"], run["shards_total"]) == (3, 3)


def test_reasons_breakdown_covers_every_retained_reading(store: Store) -> None:
    reasons = reasons_breakdown(store.engine)
    assert set(reasons["kind"]) == {"rule", "detector", "context", "artifact", "sparse"}
    assert reasons["readings"].is_monotonic_decreasing
    retained = store_overview(store.engine).readings_retained
    assert reasons["readings"].sum() >= retained
    assert reasons_breakdown(store.engine, run_id=1).equals(reasons)


def test_run_detail_lists_verifiable_archive_files_and_its_audit_entries(store: Store) -> None:
    detail = run_detail(store.engine, 1)
    assert detail is not None
    assert detail.run["status"] == "committed"
    assert detail.run["policy_digest"] == POLICY.digest == json_digest(detail.policy)
    assert detail.counts["readings_in"] == 21_822
    assert sorted(detail.archive_files["patient"]) == PATIENTS
    for name, sha in zip(detail.archive_files["name"], detail.archive_files["sha256"], strict=True):
        assert hashlib.sha256((store.archive / name).read_bytes()).hexdigest() == sha
    assert list(detail.audit["action"]) == ["consolidate.started", "consolidate.committed"]
    assert detail.episodes == _scalar(store.engine, select(func.count()).select_from(EPISODE))
    assert run_detail(store.engine, 99) is None


def json_digest(policy: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(policy, sort_keys=True, default=str).encode()).hexdigest()


def test_audit_chain_of_the_sample_verifies(store: Store) -> None:
    status = audit_chain_status(store.engine)
    assert status.ok
    assert status.events >= 3
    latest = recent_audit(store.engine, limit=1)
    assert list(latest["seq"]) == [status.events]


def test_an_empty_store_overview_is_empty(sqlite_engine: Engine) -> None:
    assert store_overview(sqlite_engine).empty


def test_list_patients_searches_ids_in_any_case(store: Store) -> None:
    assert list_patients(store.engine) == PATIENTS
    assert list_patients(store.engine, "0002") == ["icu-0002"]
    assert list_patients(store.engine, "ICU-0003") == ["icu-0003"]
    assert list_patients(store.engine, "nobody") == []


@pytest.mark.parametrize("patient", PATIENTS)
def test_patient_view_shows_every_reading_once(store: Store, patient: str) -> None:
    span = patient_span(store.engine, patient)
    assert span is not None
    view = patient_view(store.engine, POLICY, patient, span[0], span[1] + 1, UTC)
    with store.engine.connect() as conn:
        summarised = conn.execute(
            select(func.sum(SUMMARY.c.n)).where(
                SUMMARY.c.patient == patient, SUMMARY.c.band != "artifact"
            )
        ).scalar_one()
        retained = conn.execute(
            select(func.count()).where(READING.c.patient == patient, READING.c.state == "retained")
        ).scalar_one()
        episodes = conn.execute(
            select(func.count()).where(EPISODE.c.patient == patient)
        ).scalar_one()
    assert view.bands["n"].sum() == summarised
    assert len(view.retained) == view.retained_total == retained
    assert view.hot.empty  # everything was consolidated
    assert len(view.episodes) == episodes
    assert (view.bands["min"] <= view.bands["mean"]).all()
    assert (view.bands["mean"] <= view.bands["max"] + 1e-9).all()
    assert view.codes[:2] == ("9279-1", "59408-5")  # the policy's order: vitals first
    assert view.retained["why"].str.len().gt(0).all()
    assert not view.on_hold


def test_retained_readings_say_why_with_their_strongest_kind_first(store: Store) -> None:
    span = patient_span(store.engine, "icu-0001")
    assert span is not None
    kept = patient_view(store.engine, POLICY, "icu-0001", span[0], span[1] + 1, UTC).retained
    rules = kept[kept["kind"] == "rule"]
    assert rules["why"].str.contains(r"NEWS2 band .*sub-score \d").all()
    detectors = kept[kept["kind"] == "detector"]
    assert detectors["why"].str.contains(r"vs threshold|robust SDs").all()
    context = kept[kept["kind"] == "context"]
    anchors = context["why"].str.extract(r"\(reading (\d+)\)")[0].astype("int64")
    assert set(anchors) <= set(kept["id"])  # the reading it is context of was kept too
    assert context["why"].str.contains(r"min (?:before|after) ").all()
    assert kept[kept["kind"] == "artifact"]["why"].str.contains("implausible").all()


def test_patient_view_keeps_to_its_time_range(store: Store) -> None:
    span = patient_span(store.engine, "icu-0002")
    assert span is not None
    since, until = span[0] + 3 * 3_600_000, span[0] + 5 * 3_600_000
    view = patient_view(store.engine, POLICY, "icu-0002", since, until, UTC)
    assert ((view.retained["t_ms"] >= since) & (view.retained["t_ms"] < until)).all()
    assert ((view.bands["end_ms"] > since) & (view.bands["start_ms"] < until)).all()
    assert sorted(set(view.bands["start_ms"])) == [since, since + 3_600_000]
    assert ((view.episodes["end_ms"] >= since) & (view.episodes["start_ms"] < until)).all()
    assert view.summary_resolution_ms == 3_600_000
    assert view.hot_resolution_ms == 60_000


def test_patient_view_of_an_unknown_patient_is_empty(store: Store) -> None:
    assert patient_span(store.engine, "nobody") is None
    view = patient_view(store.engine, POLICY, "nobody", 0, 10**13, UTC)
    assert view.empty
    assert view.codes == ()
    assert view.news2.empty


@pytest.mark.parametrize("patient", PATIENTS)
def test_news2_range_holds_the_true_aggregate(store: Store, patient: str) -> None:
    """The exact aggregate, recomputed from every reading (hot and archived), stays within
    each slot's lowest–highest for the whole slot."""
    with store.engine.connect() as conn:
        summaries = conn.execute(select(SUMMARY).where(SUMMARY.c.patient == patient)).all()
        archived = summarised_readings(conn, store.archive, summaries)
        hot = pd.DataFrame(
            conn.execute(
                select(READING.c.id, READING.c.code, READING.c.effective_ms, READING.c.value).where(
                    READING.c.patient == patient
                )
            ).all(),
            columns=["id", "code", "effective_ms", "value"],
        )
    frame = pd.concat([archived[list(hot.columns)], hot], ignore_index=True)
    frame = frame.rename(columns={"effective_ms": "t"}).astype(
        {"id": "int64", "t": "int64", "value": "float64"}
    )
    times, totals = news2_steps(frame.sort_values(["code", "t"], ignore_index=True), POLICY)
    span = patient_span(store.engine, patient)
    assert span is not None
    view = patient_view(store.engine, POLICY, patient, span[0], span[1] + 1, UTC)
    assert set(view.news2_parameters) == {"respiration", "spo2", "systolic", "pulse", "temperature"}
    assert len(view.news2) == 24
    for slot in view.news2.itertuples():
        first = max(int(np.searchsorted(times, slot.start_ms, side="right")) - 1, 0)
        inside = totals[first : int(np.searchsorted(times, slot.end_ms, side="left"))]
        assert slot.low <= inside.min()
        assert inside.max() <= slot.high
    for episode in view.episodes.itertuples():
        during = view.news2[
            (view.news2["end_ms"] > episode.start_ms) & (view.news2["start_ms"] <= episode.end_ms)
        ]
        assert during["high"].max() >= episode.peak_news2


@pytest.mark.parametrize(
    ("span_hours", "at_least", "expected_minutes"),
    [(24, 1, 1), (72, 1, 5), (24 * 30, 1, 30), (24 * 30, 60, 60), (24 * 365 * 5, 1, 1440 * 2)],
)
def test_resolution_is_a_round_step_within_the_point_budget(
    span_hours: int, at_least: int, expected_minutes: int
) -> None:
    step = resolution_ms(span_hours * 3_600_000, 1500, at_least * 60_000)
    assert step == expected_minutes * 60_000
    assert span_hours * 3_600_000 / step <= 1500


def test_long_ranges_merge_summaries_into_coarser_slots(store: Store) -> None:
    span = patient_span(store.engine, "icu-0003")
    assert span is not None
    fine = patient_view(store.engine, POLICY, "icu-0003", span[0], span[1] + 1, UTC)
    coarse = patient_view(store.engine, POLICY, "icu-0003", span[0], span[1] + 1, UTC, max_points=5)
    assert coarse.summary_resolution_ms == 6 * 3_600_000
    assert coarse.bands["n"].sum() == fine.bands["n"].sum()
    for code, group in fine.bands.groupby("code"):
        merged = coarse.bands[coarse.bands["code"] == code]
        # Coarser slots also fold in the retained readings of hours that had no summary.
        assert merged["min"].min() <= group["min"].min()
        assert merged["max"].max() >= group["max"].max()
        assert merged["kept"].sum() >= group["kept"].sum()
        weights = merged["n"] + merged["kept"]
        weighted = (merged["mean"] * weights).sum() / weights.sum()
        assert merged["min"].min() <= weighted <= merged["max"].max()


def test_hot_readings_are_aggregated_and_holds_flagged(engine: Engine, tmp_path: Path) -> None:
    resources = [
        observation(f"o{i}", value=60 + i, when=f"2026-01-05T10:{i:02d}:00Z") for i in range(10)
    ]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "hr.ndjson", resources))])
    add_hold(Handle(engine, clock=lambda: 0, actor="test"), "p1", "case 7")
    since = parse_iso_ms("2026-01-05T10:00:00+00:00")
    view = patient_view(engine, POLICY, "p1", since, since + 3_600_000, UTC)
    assert view.on_hold
    assert list(view.hot["n"]) == [1] * 10
    assert list(view.hot["mean"]) == [60.0 + i for i in range(10)]
    coarse = patient_view(engine, POLICY, "p1", since, since + 3_600_000, UTC, max_points=2)
    assert coarse.hot_resolution_ms == 30 * 60_000
    assert (list(coarse.hot["n"]), list(coarse.hot["min"]), list(coarse.hot["max"])) == (
        [10],
        [60.0],
        [69.0],
    )
    assert list(coarse.news2["high"]) == [0]  # HR 60–69 scores 0


def test_quarantine_entries_say_where_and_why(engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps(observation("ok")) + "\n{not json\n")
    ingest_paths(engine, [str(bad)])
    total, entries = quarantine_entries(engine)
    assert total == 1
    entry = entries.iloc[0]
    assert entry["source"].endswith("bad.ndjson")
    assert entry["position"]
    assert entry["error"]
    assert "{not json" in entry["raw"]
    assert quarantine_entries(engine, search="BAD.NDJSON")[1]["id"].tolist() == [entry["id"]]
    assert quarantine_entries(engine, search="elsewhere")[1].empty


def test_news2_range_counts_the_score_carried_into_a_slot(engine: Engine, tmp_path: Path) -> None:
    """HR 140 (sub-score 3) at 10:59 stays in force until the 11:30 reading of 70, so the
    11:00 slot may reach 3 even though its own reading scores 0."""
    resources = [
        observation("a", value=140, when="2026-01-05T10:59:00Z"),
        observation("b", value=70, when="2026-01-05T11:30:00Z"),
    ]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "hr.ndjson", resources))])
    since = parse_iso_ms("2026-01-05T10:00:00+00:00")
    view = patient_view(engine, POLICY, "p1", since, since + 2 * 3_600_000, UTC)
    assert view.news2_parameters == ("pulse",)
    assert list(zip(view.news2["low"], view.news2["high"], strict=True)) == [(3, 3), (0, 3)]


def test_retained_by_kind_counts_distinct_readings(store: Store) -> None:
    kinds = retained_by_kind(store.engine)
    retained = store_overview(store.engine).readings_retained
    assert set(kinds) == {"rule", "detector", "context", "artifact", "sparse"}
    assert all(0 < n <= retained for n in kinds.values())
    per_rule = reasons_breakdown(store.engine).groupby("kind")["readings"].sum()
    assert all(kinds[k] <= per_rule[k] for k in kinds)  # a reading may have several rules
