"""Summaries only where they compress; sparse series keep what lies outside the reference."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from medsleep.consolidate.job import consolidate
from medsleep.consolidate.sparse import sparse_retention_rows, too_sparse
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.handle import Store
from medsleep.store.models import Retention, Summary
from medsleep.timefmt import parse_iso_ms
from tests.helpers import check_conservation, observation, readings, write_ndjson

POLICY = load_policy()
UNTIL = parse_iso_ms("2027-01-01T00:00:00+00:00")
RETENTION = Retention.__table__  # type: ignore[attr-defined]
SUMMARY = Summary.__table__  # type: ignore[attr-defined]


def _reasons(engine: Engine) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    with engine.connect() as conn:
        for reading_id, kind, rule in conn.execute(
            select(RETENTION.c.reading_id, RETENTION.c.kind, RETENTION.c.rule)
        ):
            out.setdefault(reading_id, set()).add(f"{kind}:{rule}")
    return out


def _outpatient(tmp_path: Path) -> Path:
    """A systolic pressure and an HbA1c every three months, as Synthea writes them."""
    visits = ["2026-01-05", "2026-04-05", "2026-07-05", "2026-10-05"]
    systolic = [124, 165, 118, 121]
    hba1c = [5.4, 7.95, 5.5, 5.3]
    resources = []
    for i, day in enumerate(visits):
        when = f"{day}T09:00:00Z"
        resources.append(
            observation(f"sbp-{i}", code="8480-6", value=systolic[i], unit="mm[Hg]", when=when)
        )
        resources.append(
            observation(f"a1c-{i}", code="4548-4", value=hba1c[i], unit="%", when=when)
        )
    return write_ndjson(tmp_path / "visits.ndjson", resources)


def test_sparse_readings_stay_raw_instead_of_one_reading_summaries(
    tmp_path: Path, engine: Engine, db_url: str
) -> None:
    ingest_paths(engine, [str(_outpatient(tmp_path))])
    report = consolidate(Store.open(db_url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert report.summaries == 0
    assert report.collapsed == 0
    assert report.retained == report.readings_in == 8
    assert report.sparse == 6  # the other two are kept for lying outside the reference
    assert report.series_clinical == 2
    reasons = _reasons(engine)
    by_value = {r["value"]: reasons[r["id"]] for r in readings(engine)}
    assert by_value[165.0] == {"rule:outside-reference"}
    assert by_value[7.95] == {"rule:outside-reference"}
    assert by_value[124.0] == {"sparse:too-sparse"}
    check_conservation(engine, tmp_path / "arch", {r["id"] for r in readings(engine)})


def test_dense_cells_are_summarised_and_a_lone_late_reading_stays_raw(
    tmp_path: Path, engine: Engine, db_url: str
) -> None:
    hour = [
        observation(f"hr-{m}", value=70 + m % 3, when=f"2026-01-05T10:{m:02d}:00Z")
        for m in range(0, 60, 2)
    ]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "a.ndjson", hour))])
    first = consolidate(Store.open(db_url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert first.summaries == 1
    assert first.sparse == 0
    # Late data into the summarised cell re-collapses it exactly; alone in a new cell it stays raw.
    late = [
        observation("hr-late", value=71, when="2026-01-05T10:31:00Z"),
        observation("hr-alone", value=71, when="2026-01-05T13:31:00Z"),
    ]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "b.ndjson", late))])
    second = consolidate(Store.open(db_url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert second.superseded_summaries == 1
    assert second.sparse == 1
    with engine.connect() as conn:
        active = (
            conn.execute(select(SUMMARY.c.n).where(SUMMARY.c.state == "active")).scalars().all()
        )
    assert active == [31]


def test_an_uncatalogued_code_is_counted_as_judged_statistically(
    tmp_path: Path, engine: Engine, db_url: str
) -> None:
    minutes = [
        observation(
            f"x-{m}",
            code="local-1",
            value=5.0 + (m % 2) / 10,
            unit="1",
            when=f"2026-01-05T10:{m:02d}:00Z",
        )
        for m in range(60)
    ]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "x.ndjson", minutes))])
    report = consolidate(Store.open(db_url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert (report.series_clinical, report.series_statistical) == (0, 1)


def test_cell_sizes_count_each_cell_and_refuse_a_missing_key() -> None:
    minute = 60_000
    rows = pd.DataFrame(
        {
            "code": pd.Series(["8867-4", "8867-4", "8867-4", "8867-4", "59408-5"], dtype=object),
            "unit": pd.Series(["/min"] * 4 + ["%"], dtype=object),
            "band": pd.Series(
                ["news2-0", "news2-0", "news2-1", "news2-0", "news2-0"], dtype=object
            ),
            "effective_ms": [0, minute, 2 * minute, 61 * minute, 0],
            "id": [1, 2, 3, 4, 5],
        }
    )
    # one cell of two (same code, unit, hour and band), then three of one reading each
    assert too_sparse(rows, rows.iloc[:0], POLICY).tolist() == [True] * 5
    assert [row[4] for row in sparse_retention_rows(rows, POLICY, 1)] == [2.0, 2.0, 1.0, 1.0, 1.0]
    rows.loc[2, "unit"] = None
    with pytest.raises(ValueError, match="'unit' has missing values"):
        too_sparse(rows, rows.iloc[:0], POLICY)
