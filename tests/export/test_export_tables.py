"""CSV and Parquet exports hold the FHIR export's content as tables."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from medsleep.export.tables import AUDIT_SCHEMA, READING_SCHEMA, SUMMARY_SCHEMA
from medsleep.fhir.build import is_summary
from tests.export.test_export import Store, archived_rows, hot_rows, ndjson, run_export, store  # noqa: F401


def read_table(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_hold_what_the_fhir_export_holds(store: Store, tmp_path: Path, fmt: str) -> None:  # noqa: F811
    hot = hot_rows(store.engine)
    archived = archived_rows(store.engine, store.archive)
    run_export(store, tmp_path / "fhir", include_archived=True)
    report = run_export(store, tmp_path / "tables", format=fmt, include_archived=True)
    out = tmp_path / "tables"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"readings.{fmt}", f"summaries.{fmt}", f"audit_events.{fmt}", "manifest.json"]
    )
    readings = read_table(out / f"readings.{fmt}")
    summaries = read_table(out / f"summaries.{fmt}")
    events = read_table(out / f"audit_events.{fmt}")

    # one row per reading: every hot reading and every reading behind an active summary
    assert len(readings) == len(hot) + len(archived) == 21_822
    states = {r["state"] for r in readings}
    assert states == {"retained", "archived"}
    retained = [r for r in readings if r["state"] == "retained"]
    assert all(r["reasons"] for r in retained), "every kept reading says why"
    assert all(r["archive_file"] for r in readings if r["state"] == "archived")
    # the same original resources as Observation.ndjson
    fhir_lines = (tmp_path / "fhir" / "Observation.ndjson").read_text().splitlines()
    originals = {line for line in fhir_lines if not is_summary(orjson.loads(line))}
    assert {r["resource_json"] for r in readings} == originals
    # the same summaries and audit events
    fhir_summaries = [r for r in ndjson(tmp_path / "fhir" / "Observation.ndjson") if is_summary(r)]
    assert sorted(int(s["id"]) for s in summaries) == sorted(
        int(s["identifier"][0]["value"]) for s in fhir_summaries
    )
    assert all(json.loads(str(s["archive_files"])) for s in summaries)
    assert all(s["policy_digest"] for s in summaries)
    fhir_events = ndjson(tmp_path / "fhir" / "AuditEvent.ndjson")
    # the tables were exported after the FHIR export, whose own audit event comes last
    fhir_seqs = [int(e["id"].split("-")[-1]) for e in fhir_events]
    assert [int(e["seq"]) for e in events] == [*fhir_seqs, fhir_seqs[-1] + 1]
    assert events[-1]["action"] == "export"

    manifest = json.loads((out / "manifest.json").read_text())
    for item in manifest["output"]:
        data = (out / item["url"].rsplit("/", 1)[1]).read_bytes()
        assert item["extension"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert [i["count"] for i in manifest["output"]] == [len(readings), len(summaries), len(events)]
    assert report.resources == len(readings) + len(summaries) + len(events)


def test_tables_have_fixed_schemas_even_when_empty(store: Store, tmp_path: Path) -> None:  # noqa: F811
    run_export(store, tmp_path / "pq", format="parquet", patient="nobody")
    run_export(store, tmp_path / "csv", format="csv", patient="nobody")
    for name, schema in (
        ("readings", READING_SCHEMA),
        ("summaries", SUMMARY_SCHEMA),
        ("audit_events", AUDIT_SCHEMA),
    ):
        assert pq.read_schema(tmp_path / "pq" / f"{name}.parquet").equals(schema)
        header = (tmp_path / "csv" / f"{name}.csv").read_text().splitlines()[0]
        assert header == ",".join(f'"{column}"' for column in schema.names)
    assert pq.read_table(tmp_path / "pq" / "readings.parquet").num_rows == 0
    assert read_table(tmp_path / "csv" / "readings.csv") == []


def test_csv_readings_of_one_patient_in_a_window(store: Store, tmp_path: Path) -> None:  # noqa: F811
    from medsleep.timefmt import parse_iso_ms

    since, until = parse_iso_ms("2026-01-05T01:00:00Z"), parse_iso_ms("2026-01-05T03:00:00Z")
    run_export(
        store,
        tmp_path / "out",
        format="csv",
        patient="icu-0001",
        since_ms=since,
        until_ms=until,
        include_archived=True,
    )
    readings = read_table(tmp_path / "out" / "readings.csv")
    assert readings
    assert {r["patient"] for r in readings} == {"icu-0001"}
    assert all(since <= int(r["effective_ms"]) < until for r in readings)
    # the desaturation at 01:51-02:09 is kept, with its reasons, among the archived rest
    assert {"retained", "archived"} <= {r["state"] for r in readings}
