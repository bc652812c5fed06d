"""FHIR Bulk Data export: every line validates, originals are verbatim and exported once,
re-ingesting an export reproduces the readings, the manifest's counts and checksums hold.

The sample is ingested and consolidated once per backend (``_template``); each test gets a
fresh copy of that store (``store``), so the suite pays for one consolidation per backend.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, delete, insert, select, text, update
from sqlmodel import SQLModel
from typer.testing import CliRunner

from medsleep.archive.index import summarised_readings
from medsleep.archive.restore import restore
from medsleep.audit import verify_chain
from medsleep.cli import app
from medsleep.consolidate.job import consolidate
from medsleep.errors import ArchiveError
from medsleep.export.job import ExportError, ExportRequest, export
from medsleep.fhir.build import SUMMARY_ID_PREFIX, TAG_SYSTEM, is_summary
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.bulk import insert_rows
from medsleep.store.engine import open_store
from medsleep.store.handle import Store as Handle
from medsleep.store.models import ArchiveFileRecord, AuditEvent, Reading, Run, Summary
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SAMPLE
from tests.helpers import observation, with_texts, write_ndjson
from tests.pg import create_database

UNTIL = parse_iso_ms("2026-02-01T00:00:00+00:00")
NOW = parse_iso_ms("2026-11-26T00:00:00+00:00")
READING = Reading.__table__  # type: ignore[attr-defined]
SUMMARY = Summary.__table__  # type: ignore[attr-defined]
ARCHIVE = ArchiveFileRecord.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
# What a reading is, for "reproduces exactly": everything ingest derives from a resource.
IDENTITY = ("resource_key", "resource_version", "part", "code", "effective_ms", "value", "unit")
STATISTICS = "http://terminology.hl7.org/CodeSystem/observation-statistics"


def _models() -> dict[str, Any]:
    from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
    from fhir.resources.R4B.observation import Observation
    from fhir.resources.R4B.operationoutcome import OperationOutcome
    from fhir.resources.R4B.provenance import Provenance

    return {
        "Observation": Observation,
        "Provenance": Provenance,
        "AuditEvent": FhirAuditEvent,
        "OperationOutcome": OperationOutcome,
    }


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class Store:
    url: str
    engine: Engine
    archive: Path


_TEMPLATES: dict[str, tuple[str, Path]] = {}


def _template(backend: str, new_url: Callable[[], str], tmp_root: Path) -> tuple[str, Path]:
    """The sample, ingested and consolidated once per backend and test session."""
    if backend not in _TEMPLATES:
        db_url = new_url()
        archive = tmp_root / f"template-archive-{backend}"
        engine = open_store(db_url)
        try:
            ingest_paths(engine, [str(SAMPLE)])
            consolidate(Handle.open(db_url, archive), load_policy(), until_ms=UNTIL)
        finally:
            engine.dispose()
        _TEMPLATES[backend] = (db_url, archive)
    return _TEMPLATES[backend]


def _copy_rows(source: Engine, target: Engine) -> None:
    with source.connect() as src, target.begin() as dst:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c.name for c in table.columns]
            rows = [tuple(r) for r in src.execute(select(*table.columns))]
            insert_rows(dst, table.name, columns, rows)
            if dst.dialect.name == "postgresql" and "id" in columns:
                # Explicit ids do not move a serial's sequence: move it past the copied rows.
                dst.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"coalesce(max(id), 0) + 1, false) FROM {table.name}"
                    )
                )


@pytest.fixture
def store(
    request: pytest.FixtureRequest,
    db_url: str,
    engine: Engine,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Store:
    """A consolidated copy of the sample: ~1,200 retained readings, 601 summaries, 3 archive
    files (one per patient), on the backend of ``db_url``."""
    backend = "postgres" if db_url.startswith("postgres") else "sqlite"
    base = tmp_path_factory.getbasetemp()

    def new_url() -> str:
        if backend == "sqlite":
            return f"sqlite:///{base / 'export-template.db'}"
        return create_database(request.getfixturevalue("postgres_admin_url"))

    url, archive = _template(backend, new_url, base)
    source = open_store(url)
    try:
        _copy_rows(source, engine)
    finally:
        source.dispose()
    copy = tmp_path / "archive"
    shutil.copytree(archive, copy)
    return Store(db_url, engine, copy)


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str:
    """A second, empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'second.db'}"
    return create_database(request.getfixturevalue("postgres_admin_url"))


# --------------------------------------------------------------------------- helpers


def run_export(store: Store, out: Path, **request: Any) -> Any:
    return export(
        Handle(store.engine, store.archive, clock=lambda: NOW), out, ExportRequest(**request)
    )


def ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def hot_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(READING).where(READING.c.state.in_(("raw", "retained")))
        return with_texts(conn, [dict(r._mapping) for r in conn.execute(query)])


def archived_rows(engine: Engine, archive: Path) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        active = conn.execute(select(SUMMARY).where(SUMMARY.c.state == "active")).all()
        frame = summarised_readings(conn, archive, active)
    return [dict(zip(frame.columns, row, strict=True)) for row in frame.itertuples(index=False)]


def identities(rows: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(
        tuple(int(r[c]) if c in ("part", "effective_ms") else r[c] for c in IDENTITY) for r in rows
    )


def original(resource: dict[str, Any]) -> bool:
    return resource["resourceType"] == "Observation" and not is_summary(resource)


# --------------------------------------------------------------------------- the tests


def test_every_line_validates_and_the_manifest_holds(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_export(store, out, include_archived=True)
    models = _models()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["requiresAccessToken"] is False
    assert manifest["transactionTime"] == "2026-11-26T00:00:00.000Z"
    assert manifest["request"].startswith("medsleep:$export?")
    assert manifest["error"] == []
    listed = {item["url"]: item for item in manifest["output"]}
    assert set(listed) == {
        (out / name).resolve().as_uri()
        for name in ("Observation.ndjson", "Provenance.ndjson", "AuditEvent.ndjson")
    }  # absolute, as the Bulk Data IG asks; the empty OperationOutcome file is left out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(url.rsplit("/", 1)[1] for url in listed), "manifest.json"]
    )
    for url, item in listed.items():
        data = (out / url.rsplit("/", 1)[1]).read_bytes()
        lines = data.splitlines()
        assert item["count"] == len(lines)
        assert item["extension"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert item["extension"]["bytes"] == len(data)
        for line in lines:
            resource = orjson.loads(line)
            assert resource["resourceType"] == item["type"]
            models[item["type"]].model_validate(resource)
    assert report.resources == sum(item["count"] for item in listed.values())
    assert (
        report.manifest_sha256 == hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    )


def test_originals_are_verbatim_and_each_resource_once(store: Store, tmp_path: Path) -> None:
    hot = hot_rows(store.engine)
    archived = archived_rows(store.engine, store.archive)
    run_export(store, tmp_path / "out", include_archived=True)
    lines = (tmp_path / "out" / "Observation.ndjson").read_text().splitlines()
    originals = [line for line in lines if not is_summary(orjson.loads(line))]
    expected = {r["resource_key"]: r["resource_json"] for r in [*archived, *hot]}
    keys = [f"Observation/{orjson.loads(line)['id']}" for line in originals]
    assert len(keys) == len(set(keys)), "a resource was exported twice"
    assert set(keys) == set(expected)
    assert all(line == expected[key] for key, line in zip(keys, originals, strict=True))
    # A blood-pressure panel backs two readings and is one line.
    panels = [line for line in originals if '"85354-9"' in line]
    assert panels
    assert len({r["resource_key"] for r in [*hot, *archived] if r["code"] == "8480-6"}) == len(
        panels
    )


def test_a_panel_split_between_hot_and_archive_is_exported_once(
    store: Store, tmp_path: Path
) -> None:
    hot_keys = {r["resource_key"] for r in hot_rows(store.engine) if r["part"] >= 0}
    archived_keys = {
        r["resource_key"] for r in archived_rows(store.engine, store.archive) if r["part"] >= 0
    }
    split = hot_keys & archived_keys
    assert split, "the sample keeps systolic readings whose diastolic half is collapsed"
    run_export(store, tmp_path / "out", include_archived=True)
    ids = Counter(r["id"] for r in ndjson(tmp_path / "out" / "Observation.ndjson"))
    assert all(ids[key.removeprefix("Observation/")] == 1 for key in split)


def test_reingesting_an_export_reproduces_the_retained_readings(
    store: Store, tmp_path: Path, empty_url: str
) -> None:
    hot = hot_rows(store.engine)
    run_export(store, tmp_path / "out")
    second = open_store(empty_url)
    try:
        ingest_paths(second, [str(tmp_path / "out" / "Observation.ndjson")])
        again = [
            r
            for r in hot_rows(second)
            if not r["resource_key"].startswith(f"Observation/{SUMMARY_ID_PREFIX}")
        ]
    finally:
        second.dispose()
    assert {r["resource_key"] for r in again} == {r["resource_key"] for r in hot}
    # Panels come back whole: the half that was collapsed reappears beside the retained half.
    mine = identities(hot)
    assert identities([r for r in again if (r["resource_key"], r["part"]) in _parts(hot)]) == mine


def _parts(rows: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(r["resource_key"], int(r["part"])) for r in rows}


def test_reingesting_an_export_with_archived_readings_reproduces_every_reading(
    store: Store, tmp_path: Path, empty_url: str
) -> None:
    everything = identities([*hot_rows(store.engine), *archived_rows(store.engine, store.archive)])
    assert sum(everything.values()) == 21_822  # the sample's readings: nothing lost
    run_export(store, tmp_path / "out", include_archived=True)
    second = open_store(empty_url)
    try:
        ingest_paths(second, [str(tmp_path / "out")])
        again = [
            r
            for r in hot_rows(second)
            if not r["resource_key"].startswith(f"Observation/{SUMMARY_ID_PREFIX}")
        ]
    finally:
        second.dispose()
    assert identities(again) == everything


def test_readings_restored_and_collapsed_again_are_exported_once(
    store: Store, tmp_path: Path, empty_url: str
) -> None:
    everything = identities([*hot_rows(store.engine), *archived_rows(store.engine, store.archive)])
    # Restore one hour of one patient, then let the next run collapse it again into a new file:
    # the first file still holds those readings, but no active summary takes them from there.
    hour = parse_iso_ms("2026-01-05T10:00:00Z"), parse_iso_ms("2026-01-05T11:00:00Z")
    restore(
        Handle(store.engine, store.archive, clock=lambda: NOW),
        patient="icu-0001",
        since_ms=hour[0],
        until_ms=hour[1],
    )
    consolidate(Handle.open(store.url, store.archive), load_policy(), until_ms=UNTIL)
    run_export(store, tmp_path / "out", include_archived=True)
    ids = [r["id"] for r in ndjson(tmp_path / "out" / "Observation.ndjson")]
    assert len(ids) == len(set(ids))
    second = open_store(empty_url)
    try:
        ingest_paths(second, [str(tmp_path / "out" / "Observation.ndjson")])
        again = [
            r
            for r in hot_rows(second)
            if not r["resource_key"].startswith(f"Observation/{SUMMARY_ID_PREFIX}")
        ]
    finally:
        second.dispose()
    assert identities(again) == everything


def test_ingest_skips_exported_summaries(store: Store, tmp_path: Path, empty_url: str) -> None:
    run_export(store, tmp_path / "out")
    second = open_store(empty_url)
    try:
        report = ingest_paths(second, [str(tmp_path / "out" / "Observation.ndjson")])
        stored = {r["resource_key"] for r in hot_rows(second)}
    finally:
        second.dispose()
    assert not any(key.startswith(f"Observation/{SUMMARY_ID_PREFIX}") for key in stored)
    with store.engine.connect() as conn:
        active = conn.execute(select(SUMMARY.c.id).where(SUMMARY.c.state == "active")).all()
    assert report.skipped_reasons.get("medsleep summary") == len(active)


def test_summaries_carry_their_statistics_and_provenance(store: Store, tmp_path: Path) -> None:
    run_export(store, tmp_path / "out")
    summaries = [r for r in ndjson(tmp_path / "out" / "Observation.ndjson") if is_summary(r)]
    provenance = {p["id"]: p for p in ndjson(tmp_path / "out" / "Provenance.ndjson")}
    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(SUMMARY).where(SUMMARY.c.state == "active"))}
        run = conn.execute(select(RUN)).one()
        files = {r.name: r for r in conn.execute(select(ARCHIVE))}
    assert len(summaries) == len(rows) == len(provenance) > 0
    for resource in summaries:
        row = rows[int(resource["identifier"][0]["value"])]
        assert resource["meta"]["tag"][0]["system"] == TAG_SYSTEM
        assert resource["code"]["coding"][0]["code"] == row.code
        assert resource["subject"] == {"reference": f"Patient/{row.patient}"}
        assert parse_iso_ms(resource["effectivePeriod"]["start"]) == row.first_ms
        assert parse_iso_ms(resource["effectivePeriod"]["end"]) == row.last_ms
        stats = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]
            for c in resource["component"]
            if c["code"]["coding"][0]["system"] == STATISTICS
        }
        spread = {"std-dev"} if row.n >= 2 else set()  # one reading has no spread to state
        assert set(stats) == {"average", "minimum", "maximum", "count", "median", *spread}
        expected = {
            "average": row.mean,
            "minimum": row.min,
            "maximum": row.max,
            "median": row.median,
            "std-dev": row.std,
            "count": row.n,
        }
        if not spread:
            del expected["std-dev"]
        assert {k: v["value"] for k, v in stats.items()} == expected
        assert stats["average"]["code"] == row.unit
        assert stats["average"]["system"] == "http://unitsofmeasure.org"
        prov = provenance[resource["id"]]
        assert prov["target"] == [{"reference": f"Observation/{resource['id']}"}]
        assert prov["policy"] == [f"urn:medsleep:policy:sha256:{run.policy_digest}"]
        assert prov["agent"][0]["who"]["identifier"]["value"] == str(row.run_id)
        roles = {(e["role"], e["what"]["identifier"]["value"]) for e in prov["entity"]}
        names = json.loads(row.archive_files)
        assert roles == {(role, n) for n in names for role in ("source", "removal")}
        assert all(files[n].sha256 in str(prov["entity"]) for n in names)


def test_audit_events_cover_runs_restores_and_exports(store: Store, tmp_path: Path) -> None:
    restore(Handle(store.engine, store.archive, clock=lambda: NOW), patient="icu-0003")
    first = run_export(store, tmp_path / "first")
    run_export(store, tmp_path / "second")
    events = ndjson(tmp_path / "second" / "AuditEvent.ndjson")
    actions = [e["subtype"][0]["code"] for e in events]
    assert {"ingest.done", "consolidate.started", "consolidate.committed", "restore"} <= set(
        actions
    )
    assert actions.count("export") == 1  # the first export; the second audits itself after
    with store.engine.connect() as conn:
        assert verify_chain(conn).ok
        chain = conn.execute(select(AUDIT).order_by(AUDIT.c.seq)).all()
    assert [e["id"] for e in events] == [f"medsleep-audit-{r.seq}" for r in chain[:-1]]
    exported = json.loads(chain[-2].details_json)
    assert chain[-2].action == "export"
    assert exported["manifest_sha256"] == first.manifest_sha256
    # Each AuditEvent carries its chain link, so a reader can check the hashes.
    details = {d["type"]: d["valueString"] for d in events[-1]["entity"][0]["detail"]}
    assert details["hash"] == chain[-2].hash
    assert details["prev_hash"] == chain[-3].hash


def test_superseded_summaries_are_not_exported_and_restored_readings_are(
    store: Store, tmp_path: Path
) -> None:
    report = restore(Handle(store.engine, store.archive, clock=lambda: NOW), patient="icu-0002")
    assert report.summaries > 0
    run_export(store, tmp_path / "out", include_archived=True)
    resources = ndjson(tmp_path / "out" / "Observation.ndjson")
    summary_patients = {r["subject"]["reference"] for r in resources if is_summary(r)}
    assert "Patient/icu-0002" not in summary_patients
    with store.engine.connect() as conn:
        active = conn.execute(select(SUMMARY.c.id).where(SUMMARY.c.state == "active")).all()
    assert sum(1 for r in resources if is_summary(r)) == len(active)
    keys = {f"Observation/{r['id']}" for r in resources if original(r)}
    assert {r["resource_key"] for r in hot_rows(store.engine) if r["patient"] == "icu-0002"} <= keys


def test_a_patient_scoped_export_holds_only_that_patient(store: Store, tmp_path: Path) -> None:
    restore(Handle(store.engine, store.archive, clock=lambda: NOW), patient="icu-0003")
    run_export(store, tmp_path / "out", patient="icu-0001", include_archived=True)
    resources = ndjson(tmp_path / "out" / "Observation.ndjson")
    assert resources
    assert {r["subject"]["reference"] for r in resources} == {"Patient/icu-0001"}
    events = ndjson(tmp_path / "out" / "AuditEvent.ndjson")
    assert "restore" not in {e["subtype"][0]["code"] for e in events}  # it names icu-0003
    assert "consolidate.committed" in {e["subtype"][0]["code"] for e in events}


def test_since_and_until_bound_readings_and_summaries(store: Store, tmp_path: Path) -> None:
    since, until = parse_iso_ms("2026-01-05T06:00:00Z"), parse_iso_ms("2026-01-05T12:00:00Z")
    run_export(store, tmp_path / "out", since_ms=since, until_ms=until, include_archived=True)
    resources = ndjson(tmp_path / "out" / "Observation.ndjson")
    for r in resources:
        if is_summary(r):
            assert parse_iso_ms(r["effectivePeriod"]["end"]) >= since
            assert parse_iso_ms(r["effectivePeriod"]["start"]) < until
        else:
            assert since <= parse_iso_ms(r["effectiveDateTime"]) < until
    assert sum(1 for r in resources if is_summary(r)) > 0
    assert sum(1 for r in resources if original(r)) > 1000


def test_superseded_and_retracted_versions_are_left_out(engine: Engine, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_ndjson(
        inputs / "1.ndjson",
        [
            observation("a", value=70, version="1"),
            observation("b", value=80),
            observation("c", value=90),
        ],
    )
    write_ndjson(
        inputs / "2.ndjson",
        [observation("a", value=71, version="2"), observation("b", status="entered-in-error")],
    )
    ingest_paths(engine, [str(inputs / "1.ndjson")])
    ingest_paths(engine, [str(inputs / "2.ndjson")])
    out = tmp_path / "out"
    report = export(Handle(engine, tmp_path / "arch", clock=lambda: NOW), out, ExportRequest())
    resources = ndjson(out / "Observation.ndjson")
    assert sorted((r["id"], r["valueQuantity"]["value"]) for r in resources) == [
        ("a", 71),
        ("c", 90),
    ]
    assert report.excluded == {"superseded_readings": 1, "retracted_readings": 1}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extension"]["medsleep"]["excluded"] == report.excluded


def test_a_pretty_printed_original_is_exported_on_one_line(engine: Engine, tmp_path: Path) -> None:
    pretty = json.dumps(observation("p", value=72.50), indent=2)
    (tmp_path / "p.json").write_text(pretty)
    ingest_paths(engine, [str(tmp_path / "p.json")])
    export(Handle(engine, tmp_path / "a", clock=lambda: NOW), tmp_path / "out", ExportRequest())
    (line,) = (tmp_path / "out" / "Observation.ndjson").read_text().splitlines()
    assert line == pretty.replace("\n", "")
    assert "72.5" in line
    assert json.loads(line) == json.loads(pretty)


def test_validate_all_lists_invalid_originals_and_still_exports_them(
    engine: Engine, tmp_path: Path
) -> None:
    odd = observation("odd", valueQuantity={"value": 72, "unit": "/min", "code": "/min"})
    odd["unknownElement"] = True  # medsleep's fast path ignores it; the FHIR model does not
    write_ndjson(tmp_path / "in.ndjson", [odd, observation("fine")])
    ingest_paths(engine, [str(tmp_path / "in.ndjson")])
    out = tmp_path / "out"
    report = export(
        Handle(engine, tmp_path / "a", clock=lambda: NOW), out, ExportRequest(validate_all=True)
    )
    assert len(ndjson(out / "Observation.ndjson")) == 2
    (issue,) = ndjson(out / "OperationOutcome.ndjson")
    assert "Observation/odd" in issue["issue"][0]["expression"][0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["url"].rsplit("/", 1)[1] for e in manifest["error"]] == ["OperationOutcome.ndjson"]
    assert [e.count for e in report.errors] == [1]
    _models()["OperationOutcome"].model_validate(issue)


def test_a_failed_export_publishes_nothing(store: Store, tmp_path: Path) -> None:
    with store.engine.connect() as conn:
        name = conn.execute(select(ARCHIVE.c.name).limit(1)).scalar_one()
    (store.archive / name).write_bytes(b"tampered")
    out = tmp_path / "out"
    with pytest.raises(ArchiveError, match="checksum"):
        run_export(store, out, include_archived=True)
    assert list(out.iterdir()) == []  # no manifest, no partial or temporary files
    with store.engine.connect() as conn:
        actions = conn.execute(select(AUDIT.c.action)).scalars().all()
    assert "export" not in actions


def test_an_export_that_cannot_be_audited_is_withdrawn(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medsleep.export.job

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise ExportError("the audit chain is unavailable")

    ingest_paths(engine, [str(write_ndjson(tmp_path / "in.ndjson", [observation("a")]))])
    monkeypatch.setattr(medsleep.export.job, "append_with_retry", refuse)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="unavailable"):
        export(Handle(engine, tmp_path, clock=lambda: NOW), out, ExportRequest())
    assert list(out.iterdir()) == []


def test_the_output_folder_must_be_new_or_empty(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export(Handle(engine, tmp_path, clock=lambda: NOW), out, ExportRequest())


def test_an_export_of_an_empty_store_is_valid(engine: Engine, tmp_path: Path) -> None:
    report = export(Handle(engine, tmp_path, clock=lambda: NOW), tmp_path / "o", ExportRequest())
    assert [f.name for f in report.files] == ["manifest.json"]  # empty files are left out
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert (manifest["output"], manifest["error"]) == ([], [])
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["manifest.json"]


def test_purged_archive_files_are_reported_not_fatal(store: Store, tmp_path: Path) -> None:
    with store.engine.begin() as conn:
        name = conn.execute(select(ARCHIVE.c.name).order_by(ARCHIVE.c.name).limit(1)).scalar_one()
        conn.execute(update(ARCHIVE).where(ARCHIVE.c.name == name).values(state="purged"))
    (store.archive / name).unlink()
    with store.engine.connect() as conn:
        active = conn.execute(select(SUMMARY.c.id).where(SUMMARY.c.state == "active")).all()
    report = run_export(store, tmp_path / "out", include_archived=True)
    assert set(report.purged_files) == {name}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["extension"]["medsleep"]["purgedArchiveFiles"] == [name]
    assert report.summaries == len(active)  # the summaries stay


# --------------------------------------------------------------------------- the command


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_cli_export_writes_a_manifest_and_reports(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _cli(
        "export", "--out", str(out), "--db", store.url, "--archive", str(store.archive), "--json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["resources"] == sum(f["count"] for f in payload["files"])
    assert (out / "manifest.json").is_file()


def test_cli_export_rejects_a_bad_format_and_a_used_folder(store: Store, tmp_path: Path) -> None:
    bad = _cli("export", "--out", str(tmp_path / "x"), "--format", "xml", "--db", store.url)
    assert bad.exit_code == 2
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "f").write_text("x")
    used = _cli("export", "--out", str(tmp_path / "used"), "--db", store.url)
    assert used.exit_code == 1
    assert "not empty" in used.stderr


def test_every_export_and_purge_option_is_documented() -> None:
    import typer.main

    docs = (Path(__file__).resolve().parents[2] / "docs" / "compliance.md").read_text()
    group = typer.main.get_command(app)
    for name in ("export", "purge"):
        command = group.commands[name]  # type: ignore[attr-defined]
        assert f"medsleep {name}" in docs
        for param in command.params:
            for option in param.opts:
                if option.startswith("--") and option not in ("--db", "--archive", "--help"):
                    assert option in docs, f"{name} {option} is not in docs/compliance.md"


def test_clone_fixture_copies_the_whole_store(store: Store) -> None:
    with store.engine.connect() as conn:
        assert verify_chain(conn).ok
        runs = conn.execute(select(RUN)).all()
    assert len(runs) == 1
    # New rows get fresh ids after the copy (PostgreSQL sequences moved past copied rows).
    with store.engine.begin() as conn:
        inserted = conn.execute(
            insert(RUN).values(
                started_ms=0, until_ms=0, policy_digest="x", policy_json="{}", status="failed"
            )
        ).inserted_primary_key
        assert inserted is not None
        assert inserted[0] == runs[0].id + 1
        conn.execute(delete(RUN).where(RUN.c.id == inserted[0]))


def test_synthea_bundles_round_trip_through_an_export(tmp_path: Path) -> None:
    """Synthea's Bundles name their patients by urn:uuid fullUrls. An export writes those
    subjects as Patient/{id}, so each NDJSON line stands on its own: re-ingesting the export
    (archived originals included) gives back every reading, none quarantined."""
    from tests.conftest import SYNTHEA

    first = Handle.open(f"sqlite:///{tmp_path / 'first.db'}", tmp_path / "archive")
    second = open_store(f"sqlite:///{tmp_path / 'second.db'}")
    try:
        assert ingest_paths(first.engine, [str(SYNTHEA)]).quarantined == 0
        # Outpatient series are sparse: summaries of one or two readings are allowed here so
        # that the export has summaries of every size to check (the default keeps them raw).
        policy = replace(load_policy(), min_summary_readings=1)
        consolidate(first, policy, until_ms=parse_iso_ms("2030-01-01T00:00:00+00:00"))
        everything = identities(
            [*hot_rows(first.engine), *archived_rows(first.engine, first.archive_root)]
        )
        assert sum(everything.values()) > 1000
        out = tmp_path / "out"
        export(first, out, ExportRequest(include_archived=True))
        lines = ndjson(out / "Observation.ndjson")
        originals = [r for r in lines if original(r)]
        assert all(r["subject"]["reference"].startswith("Patient/") for r in originals)
        summaries = [r for r in lines if is_summary(r)]
        assert summaries
        assert all("system" in c for r in summaries for c in r["code"]["coding"])
        for resource in summaries:
            stats = {c["code"]["coding"][0]["code"]: c for c in resource["component"]}
            assert ("std-dev" in stats) == (stats["count"]["valueQuantity"]["value"] >= 2)
        report = ingest_paths(second, [str(out / "Observation.ndjson")])
        assert report.quarantined == 0
        again = [
            r
            for r in hot_rows(second)
            if not r["resource_key"].startswith(f"Observation/{SUMMARY_ID_PREFIX}")
        ]
        assert identities(again) == everything
    finally:
        first.close()
        second.dispose()
