"""Values that are valid FHIR but poison later steps: quarantined at ingest, or survived.

Each case is one the adversarial run of issue 12 found: extreme times broke query and export,
extreme values broke consolidation for the whole hospital.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from medsleep.cli import app
from medsleep.consolidate.job import consolidate
from medsleep.consolidate.summarize import collapse_normal_runs, summary_stats
from medsleep.fhir.units import MAX_ABS_VALUE
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.handle import Store
from medsleep.store.models import Run
from medsleep.timefmt import EARLIEST_MS, LATEST_MS, iso, parse_iso_ms
from tests.helpers import READING, observation, quarantined, readings, write_ndjson

POLICY = load_policy()
UNTIL = parse_iso_ms("2026-02-01T00:00:00+00:00")
runner = CliRunner()


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1899-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "1000",
    ],
)
def test_times_outside_the_accepted_range_are_quarantined(
    tmp_path: Path, sqlite_engine: Engine, when: str
) -> None:
    good = observation("good")
    bad = observation("bad", version="1", when=when)  # with versionId: the fast path's shape
    report = ingest_paths(sqlite_engine, [str(write_ndjson(tmp_path / "a.ndjson", [bad, good]))])
    assert (report.stored, report.quarantined) == (1, 1)
    (row,) = quarantined(sqlite_engine)
    assert "outside the accepted time range" in row["error"]
    assert "1900-01-01T00:00:00Z" in row["error"]


def test_edges_of_the_time_range_are_accepted(tmp_path: Path, sqlite_engine: Engine) -> None:
    first = observation("first", when="1900-01-01T00:00:00Z")
    last = observation("last", when="2199-12-31T23:59:59.999Z")
    report = ingest_paths(sqlite_engine, [str(write_ndjson(tmp_path / "a.ndjson", [first, last]))])
    assert report.stored == 2
    times = sorted(r["effective_ms"] for r in readings(sqlite_engine))
    assert times == [EARLIEST_MS, LATEST_MS - 1]
    assert iso(LATEST_MS - 1) == "2199-12-31T23:59:59.999Z"


@pytest.mark.parametrize(
    ("value", "unit", "code"),
    [
        (1.7976931348623157e308, "/min", "8867-4"),
        (1e200, "/min", "8867-4"),
        (-1e16, "/min", "8867-4"),
        (1.7e308, "[degF]", "8310-5"),  # became Inf °C
        (1e16, "g", "29463-7"),  # in range once converted (1e13 kg): the original is not
        (2e14, "kPa", "8480-6"),  # in range as sent, 1.5e15 mm[Hg] once converted
    ],
)
def test_values_outside_the_accepted_range_are_quarantined(
    tmp_path: Path, sqlite_engine: Engine, value: float, unit: str, code: str
) -> None:
    bad = observation("bad", version="1", value=value, unit=unit, code=code)
    report = ingest_paths(sqlite_engine, [str(write_ndjson(tmp_path / "a.ndjson", [bad]))])
    assert report.quarantined == 1
    assert "outside the accepted value range" in quarantined(sqlite_engine)[0]["error"]
    assert not readings(sqlite_engine)


def test_largest_accepted_value_survives_conversion(tmp_path: Path, sqlite_engine: Engine) -> None:
    edge = observation("edge", value=MAX_ABS_VALUE, unit="/min")
    report = ingest_paths(sqlite_engine, [str(write_ndjson(tmp_path / "a.ndjson", [edge]))])
    assert report.stored == 1


def test_query_and_export_work_after_extreme_times_were_offered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    path = write_ndjson(
        tmp_path / "a.ndjson",
        [
            observation("ok"),
            observation("past", when="0001-01-01T00:00:00+14:00"),
            observation("future", when="9999-12-31T23:59:59-14:00"),
        ],
    )
    assert runner.invoke(app, ["ingest", str(path), "--db", url]).exit_code == 3
    result = runner.invoke(app, ["query", "readings", "--db", url, "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
    for fmt in ("fhir", "csv", "parquet"):
        out = tmp_path / f"export-{fmt}"
        result = runner.invoke(app, ["export", "--db", url, "--out", str(out), "--format", fmt])
        assert result.exit_code == 0, result.output


def test_statistics_of_the_largest_floats_are_finite() -> None:
    big = 1.7976931348623157e308
    stats = summary_stats([big, big], [0, 1])
    assert (stats.mean, stats.std, stats.median) == (big, 0.0, big)
    stats = summary_stats([1e200, -1e200, 1e200], [0, 1, 2])
    assert math.isfinite(stats.std)
    assert stats.std > 1e200
    spread = summary_stats([big, -big], [0, 1])  # a std beyond the float range saturates
    assert (spread.mean, spread.std) == (0.0, big)
    frame = {
        "id": [1, 2, 3],
        "patient": "p",
        "code": "x",
        "unit": "1",
        "band": "",
        "t": [0, 1, 2],
        "value": [big, big, 1e200],
    }
    import pandas as pd

    summaries = collapse_normal_runs(pd.DataFrame(frame), 60).summaries
    assert summaries[["mean", "std", "median"]].map(math.isfinite).all().all()


def _store_two_patients(tmp_path: Path, engine: Engine) -> None:
    resources = [
        observation(f"{patient}-{minute}", patient=patient, when=f"2026-01-05T10:{minute:02d}:00Z")
        for patient in ("p1", "p2")
        for minute in range(10)
    ]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "a.ndjson", resources))])


def _poison(engine: Engine, patient: str, value: float) -> None:
    """What an older medsleep (before the value range) could have stored."""
    with engine.begin() as conn:
        conn.execute(update(READING).where(READING.c.patient == patient).values(value=value))


def test_largest_floats_in_an_old_store_consolidate(
    sqlite_url: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    _store_two_patients(tmp_path, sqlite_engine)
    _poison(sqlite_engine, "p1", 1.7976931348623157e308)
    report = consolidate(Store(sqlite_engine, tmp_path / "a"), POLICY, until_ms=UNTIL)
    assert report.status == "committed", report.failed
    assert report.shards_done == 2


def test_a_shard_that_cannot_be_consolidated_is_skipped_with_its_reason(
    sqlite_url: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    _store_two_patients(tmp_path, sqlite_engine)
    _poison(sqlite_engine, "p1", math.inf)  # SQLite stores it; the summaries cannot
    report = consolidate(Store(sqlite_engine, tmp_path / "a"), POLICY, until_ms=UNTIL)
    assert report.status == "partial"
    assert report.shards_done == 1
    assert [f["patient"] for f in report.failed] == ["p1"]
    assert "finite" in report.failed[0]["error"]
    assert {r["patient"] for r in readings(sqlite_engine, state="raw")} == {"p1"}
    assert len(readings(sqlite_engine, patient="p1")) == 10  # nothing lost
    run_table = Run.__table__  # type: ignore[attr-defined]
    with sqlite_engine.connect() as conn:
        run = conn.execute(run_table.select()).one()
    assert run.status == "partial"
    assert "1 shard(s) skipped" in run.error
    # the next night is not blocked either, and the CLI says so with exit 3
    result = runner.invoke(
        app,
        [
            "consolidate",
            "--db",
            sqlite_url,
            "--archive",
            str(tmp_path / "a"),
            "--until",
            "2026-02-01",
            "--json",
        ],
    )
    assert result.exit_code == 3
    assert json.loads(result.stdout)["failed"][0]["patient"] == "p1"
