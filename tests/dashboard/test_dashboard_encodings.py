"""Patient-page encodings that cannot mislead: a slot's band spans its retained readings too,
artifacts sit in their own lane outside the axis range, hot stretches get provisional markers
from consolidation's own rules, NEWS2 0 is drawn, labs are labelled points with their limits."""

from __future__ import annotations

import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select, update

from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.read.patient import CHART_SLOTS, patient_view
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


def _retain(engine: Engine, value: float, kind: str) -> list[int]:
    with engine.begin() as conn:
        ids = list(conn.execute(select(READING.c.id).where(READING.c.value == value)).scalars())
        conn.execute(update(READING).where(READING.c.id.in_(ids)).values(state="retained"))
        conn.execute(insert(RETENTION), [{"run_id": 1, "reading_id": i, "kind": kind,
                                          "rule": "news2-band"} for i in ids])  # fmt: skip
    return ids


def test_a_dense_day_is_sent_as_a_bounded_number_of_slots_with_every_retained_reading(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    # A heart rate every 10 s for a day (8,640 readings), 29 of them retained spikes.
    step, count = 10_000, 8_640
    resources = [
        observation(f"hr-{i}", value=131 if i % 300 == 150 else 72 + i % 7,
                    when=iso(START + i * step))
        for i in range(count)
    ]  # fmt: skip
    ingest_paths(sqlite_engine, [str(write_ndjson(tmp_path / "dense.ndjson", resources))])
    retained = _retain(sqlite_engine, 131, "rule")
    view = patient_view(sqlite_engine, POLICY, "p1", START, START + 24 * HOUR, UTC)
    spec = ui_charts.vital_chart(view, "8867-4", POLICY, UTC, "UTC")
    hot = spec["datasets"]["hot"]
    assert len(hot) <= CHART_SLOTS  # under 1 slot a pixel of a wide chart, whatever the density
    assert int(view.hot["n"].sum()) == count - len(retained)  # every hot reading is in a slot
    slots = view.hot.sort_values("start_ms")
    assert (hot["y0"].to_numpy() < slots["min"].to_numpy()).all()  # envelopes: min to max,
    assert (hot["y1"].to_numpy() > slots["max"].to_numpy()).all()  # a tick wider
    assert slots["max"].max() == 78  # the spikes are not in the envelopes: they are points
    assert len(retained) == 29
    assert sorted(spec["datasets"]["kept"]["id"]) == sorted(retained)  # each its own point


def test_a_slots_tooltip_counts_and_spans_its_retained_readings(sample: Engine) -> None:
    view = patient_view(sample, POLICY, "icu-0001", START - 30 * HOUR, START + 10 * HOUR, UTC)
    with_kept = view.bands[view.bands["kept"] > 0].iloc[0]
    spec = ui_charts.vital_chart(view, with_kept["code"], POLICY, UTC, "UTC")
    slots = spec["datasets"]["summary"]
    row = slots[slots["start_ms_x"] == with_kept["start_ms"]].iloc[0]
    total, kept = int(with_kept["n"] + with_kept["kept"]), int(with_kept["kept"])
    assert row["readings"] == f"{total} ({kept} of them retained)"
    assert row["values"].startswith(f"{with_kept['min']:.4g}")
    assert row["y0"] == with_kept["min"]
    assert row["y1"] == with_kept["max"]
    assert "UTC" in row["from"]


def test_the_browser_evaluates_nothing_per_datum_that_could_be_sent_ready(
    sample: Engine,
) -> None:
    """Streamlit runs Vega's CSP-safe expression interpreter: no per-datum number formats,
    no ARIA descriptions, no invalid-value filters, no date parsing (times are sent as ms)."""
    view = patient_view(sample, POLICY, "icu-0002", START - 24 * HOUR, START + 2 * HOUR, UTC)
    specs = [ui_charts.news2_chart(view, UTC, "UTC")] + [
        ui_charts.vital_chart(view, code, POLICY, UTC, "UTC") for code in view.codes
    ]
    for spec in specs:
        assert spec["config"]["mark"] == {"aria": False, "invalid": None}
        for layer in spec["layer"]:
            assert layer["data"].get("format", {"parse": None}) == {"parse": None}
            tips = layer["encoding"].get("tooltip", [])
            assert not any("format" in tip for tip in ([tips] if isinstance(tips, dict) else tips))


def test_only_labs_get_a_label_per_result() -> None:
    diastolic, potassium = POLICY.for_code("8462-4"), POLICY.for_code("2823-3")
    assert diastolic is not None
    assert potassium is not None
    assert not ui_charts.is_lab("8462-4", diastolic)  # a reading a minute: no 1,440 labels
    assert ui_charts.is_lab("2823-3", potassium)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 500), st.integers(0, 50), st.floats(-1e6, 1e6), st.floats(0, 1e3)),
        min_size=1,
        max_size=30,
    ),
    st.floats(0, 10),
)
def test_a_slots_envelope_holds_its_range_and_its_text_its_count(
    slots: list[tuple[int, int, float, float]], tick: float
) -> None:
    frame = pd.DataFrame(
        {
            "start_ms": [START + i * 60_000 for i in range(len(slots))],
            "end_ms": [START + (i + 1) * 60_000 for i in range(len(slots))],
            "n": [n for n, _, _, _ in slots],
            "kept": [k for _, k, _, _ in slots],
            "min": [low for _, _, low, _ in slots],
            "max": [low + width for _, _, low, width in slots],
        }
    ).assign(mean=lambda f: (f["min"] + f["max"]) / 2)
    out = ui_charts._slots(frame, UTC, tick)
    assert (out["y0"] <= frame["min"]).all()
    assert (out["y1"] >= frame["max"]).all()
    assert np.allclose(out["y1"] - out["y0"], frame["max"] - frame["min"] + tick)
    for text, n, kept in zip(out["readings"], frame["n"], frame["kept"], strict=True):
        assert text.startswith(str(n + kept))
        assert (f"({kept} of them retained)" in text) == (kept > 0)
