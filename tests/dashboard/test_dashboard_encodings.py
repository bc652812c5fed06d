"""Patient-page encodings that cannot mislead: a slot's band spans its retained readings too,
artifacts sit in their own lane outside the axis range, hot stretches get provisional markers
from consolidation's own rules, NEWS2 0 is drawn, labs are labelled points with their limits."""

from __future__ import annotations

import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import Engine, insert, select, update

from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.read.patient import patient_view
from medsleep.store.engine import open_store
from medsleep.store.tables import READING, RETENTION
from medsleep.timefmt import iso, parse_iso_ms
from tests.dashboard.test_dashboard_data import consolidated_sample
from tests.helpers import observation, write_ndjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dashboard"))
import ui_charts  # noqa: E402

POLICY = load_policy()
UTC = ZoneInfo("UTC")
START = parse_iso_ms("2026-01-05T22:00:00Z")
HOUR = 3_600_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = consolidated_sample(tmp_path_factory)
    return open_store(f"sqlite:///{folder / 'medsleep.db'}")


@pytest.mark.parametrize("patient", ["icu-0001", "icu-0002", "icu-0003"])
def test_a_slots_band_spans_its_retained_readings(sample: Engine, patient: str) -> None:
    view = patient_view(sample, POLICY, patient, START - 30 * HOUR, START + 10 * HOUR, UTC)
    res = view.summary_resolution_ms
    bands = view.bands.set_index(["code", "start_ms"])
    inside = 0
    for row in view.clinical.itertuples():
        key = (row.code, int(row.t_ms) // res * res)
        if key in bands.index:
            inside += 1
            assert bands.loc[key, "min"] <= row.value <= bands.loc[key, "max"], row
    assert inside > 0  # the sample has retained readings inside collapsed hours


def _hr_night(tmp_path: Path, engine: Engine, values: dict[int, float]) -> None:
    resources = [
        observation(f"hr-{m}", value=values.get(m, 72), when=iso(START + m * 60_000))
        for m in range(120)
    ] + [
        observation(
            f"spo2-{m}",
            code="59408-5",
            unit="%",
            value=86 if 60 <= m < 80 else 97,
            when=iso(START + m * 60_000),
        )  # fmt: skip
        for m in range(120)
    ]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "night.ndjson", resources))])


def test_hot_stretches_get_provisional_markers_from_the_same_rules(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    _hr_night(tmp_path, sqlite_engine, {})
    view = patient_view(sqlite_engine, POLICY, "p1", START, START + 2 * HOUR, UTC)
    assert view.provisional is not None
    desaturation = view.provisional[view.provisional["code"] == "59408-5"]
    assert not desaturation.empty
    assert (desaturation["value"] == 86).all()
    assert desaturation["why"].str.startswith("provisional, not consolidated yet: rule").all()
    spec = ui_charts.vital_chart(view, "59408-5", POLICY, UTC, "UTC")
    hollow = [layer for layer in spec["layer"] if layer["data"]["name"] == "provisional"]
    assert hollow[0]["mark"]["filled"] is False


def test_artifacts_have_their_own_lane_outside_the_axis_range(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    _hr_night(tmp_path, sqlite_engine, {30: 290.0})
    with sqlite_engine.begin() as conn:
        spike = conn.execute(select(READING.c.id).where(READING.c.value == 290.0)).scalar_one()
        conn.execute(update(READING).where(READING.c.id == spike).values(state="retained"))
        conn.execute(insert(RETENTION).values(run_id=1, reading_id=spike, kind="artifact",
                                              rule="implausible-jump"))  # fmt: skip
    view = patient_view(sqlite_engine, POLICY, "p1", START, START + 2 * HOUR, UTC)
    assert list(view.artifacts["value"]) == [290.0]
    assert view.clinical.empty
    spec = ui_charts.vital_chart(view, "8867-4", POLICY, UTC, "UTC")
    lane = next(layer for layer in spec["layer"] if layer["data"]["name"] == "artifacts")
    top = lane["encoding"]["y"]["datum"]
    domain = lane["encoding"]["y"]["scale"]["domain"]
    assert domain[1] < 100  # HR 72 stays readable: the spike does not set the range
    assert top == domain[1]
    assert "not counted" in lane["encoding"]["tooltip"][2]["title"]


def test_news2_zero_is_drawn_and_thresholds_are_labelled(sample: Engine) -> None:
    view = patient_view(sample, POLICY, "icu-0001", START - 24 * HOUR, START + 2 * HOUR, UTC)
    spec = ui_charts.news2_chart(view, UTC, "UTC")
    data = spec["datasets"]["news2"]
    assert (data["low"] == 0).any()
    assert (data["y0"] < data["low"]).all()  # a slot at 0 (or a one-value slot) has height
    assert (data["y1"] > data["high"]).all()
    assert spec["layer"][0]["encoding"]["y"]["scale"]["domain"][0] < 0  # 0 is above the floor
    assert set(data["risk"]) <= {"0", "1–4 low", "5–6 medium", "≥ 7 high"}
    labels = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert labels["encoding"]["text"]["field"] == "meaning"
    assert list(spec["datasets"]["levels"]["meaning"]) == ["5 urgent response", "7 emergency"]


def test_labs_are_labelled_points_with_their_critical_limits(sample: Engine) -> None:
    view = patient_view(sample, POLICY, "icu-0002", START - 24 * HOUR, START + 2 * HOUR, UTC)
    spec = ui_charts.vital_chart(view, "2823-3", POLICY, UTC, "UTC")
    limits = spec["datasets"]["limits"]
    assert list(limits["limit"]) == list(POLICY.codes["2823-3"].critical or ())
    lab = spec["datasets"]["lab"]
    assert len(lab) > 0
    assert np.all(lab["label"].str.len() > 0)


def test_long_ranges_show_the_year() -> None:
    assert ui_charts._x("t", [0, 90 * 86_400_000], "t")["axis"]["format"] == "%d %b %Y"
    assert ui_charts._x("t", [0, 86_400_000], "t")["axis"]["format"] == "%d %b %H:%M"
