"""The source's own judgement: interpretation and referenceRange are stored at ingest, kept
through archive and restore, and a reading the source flags is retained with that reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, select, text

from medsleep.archive.restore import restore
from medsleep.consolidate.job import consolidate
from medsleep.fhir.parse import ResourceRejected, parse_observation
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.engine import _alembic_config, open_store
from medsleep.store.handle import Store
from medsleep.store.tables import READING, RETENTION
from medsleep.timefmt import parse_iso_ms
from tests.helpers import observation, quarantined, readings, write_ndjson

POLICY = load_policy()
UNTIL = parse_iso_ms("2027-01-01T00:00:00+00:00")
HIGH = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": "H",
        }
    ]
}


def glucose(rid: str, value: float, minute: int, **extra: Any) -> dict[str, Any]:
    return observation(
        rid, code="2345-7", value=value, unit="mg/dL",
        when=f"2026-01-05T10:{minute:02d}:00Z", **extra,
    )  # fmt: skip


def test_interpretation_and_reference_range_are_parsed_in_canonical_units() -> None:
    obs = glucose(
        "g1",
        150,
        0,
        interpretation=[HIGH],
        referenceRange=[
            {"low": {"value": 3.9, "code": "mmol/L"}, "high": {"value": 7.8, "code": "mmol/L"}}
        ],
    )
    (reading,) = parse_observation(obs).readings
    assert reading.interpretation == "H"
    low, high = (float(x) for x in reading.reference_range.split(".."))
    assert round(low, 1) == 70.3
    assert round(high, 1) == 140.5


@pytest.mark.parametrize(
    "extra",
    [
        {"interpretation": {"coding": []}},
        {"interpretation": [{"coding": [{"code": 7}]}]},
        {"referenceRange": [{"low": {"value": "3.9"}}]},
        {"referenceRange": [{"low": {"value": 3.9, "code": "furlong"}}]},
    ],
)
def test_malformed_judgement_is_rejected(extra: dict[str, Any]) -> None:
    with pytest.raises(ResourceRejected):
        parse_observation(glucose("g1", 150, 0, **extra))


def test_flagged_and_out_of_range_readings_are_retained_and_restored_exactly(
    tmp_path: Path, engine: Engine, db_url: str
) -> None:
    # A lab every two minutes, all well inside the catalogue's critical range (40-450 mg/dL).
    labs = [glucose(f"g{m}", 100 + m % 3, m, meta={"versionId": "1"}) for m in range(0, 60, 2)]
    labs[10] = glucose("flagged", 101, 20, meta={"versionId": "1"}, interpretation=[HIGH])
    labs[20] = glucose(
        "own-range", 102, 40, meta={"versionId": "1"},
        referenceRange=[{"low": {"value": 105, "code": "mg/dL"}}],
    )  # fmt: skip
    labs.append(glucose("bad", 100, 59, interpretation="H"))
    report = ingest_paths(engine, [str(write_ndjson(tmp_path / "labs.ndjson", labs))])
    assert report.quarantined == 1
    assert "interpretation must be a list" in quarantined(engine)[0]["error"]
    stored = {r["resource_key"]: r for r in readings(engine)}
    assert stored["Observation/flagged"]["interpretation"] == "H"
    assert stored["Observation/own-range"]["reference_range"] == "105.0.."
    assert stored["Observation/g0"]["interpretation"] == ""

    consolidate(Store.open(db_url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    with engine.connect() as conn:
        query = select(READING.c.resource_key, RETENTION.c.rule).join(
            RETENTION, RETENTION.c.reading_id == READING.c.id
        )
        rules = dict(conn.execute(query).all())  # type: ignore[arg-type]
    assert rules["Observation/flagged"] == "source-interpretation"
    assert rules["Observation/own-range"] == "source-reference"

    before = {r["id"]: r for r in stored.values()}
    restore(Store(engine, tmp_path / "arch", clock=lambda: UNTIL), patient="p1")
    after = {r["id"]: r for r in readings(engine)}
    for rid, row in before.items():
        for column in ("value", "interpretation", "reference_range", "resource_json"):
            assert after[rid][column] == row[column]


def test_an_old_store_upgrades_and_keeps_its_readings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002")
        conn.execute(
            text(
                "INSERT INTO reading (patient, code_system, code, effective_ms, value, unit,"
                " orig_value, orig_unit, resource_key, resource_version, part, status,"
                " resource_json, batch_id, state) VALUES ('p', 'http://loinc.org', '8867-4', 0,"
                " 72, '/min', 72, '/min', 'Observation/x', '1', -1, 'final', '{}', 1, 'raw')"
            )
        )
    old.dispose()
    engine = open_store(url)
    (row,) = readings(engine)
    assert (row["interpretation"], row["reference_range"], row["value"]) == ("", "", 72.0)
    engine.dispose()
