"""Bulk Data ``_since`` (``ExportRequest.updated_since_ms``) is on lastUpdated — when medsleep
stored or made a resource — not on when it was measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, update

from medsleep.consolidate.job import consolidate
from medsleep.export.job import ExportRequest, export
from medsleep.fhir.build import is_summary
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.handle import Store
from medsleep.store.tables import INGEST_BATCH
from medsleep.timefmt import parse_iso_ms
from tests.helpers import observation, write_ndjson

T1 = parse_iso_ms("2026-03-01T00:00:00Z")  # first ingest
T2 = parse_iso_ms("2026-03-02T00:00:00Z")  # consolidation
T3 = parse_iso_ms("2026-03-03T00:00:00Z")  # second ingest
UNTIL = parse_iso_ms("2026-02-01T00:00:00Z")


def _minutes(prefix: str, hour: int, count: int) -> list[dict[str, Any]]:
    """Normal heart rates a minute apart on 5 January (measured long before any ingest)."""
    return [
        observation(f"{prefix}{i}", value=70 + i % 3, when=f"2026-01-05T{hour:02}:{i:02}:00Z")
        for i in range(count)
    ]


def _exported(store: Store, out: Path, **request: Any) -> dict[str, list[dict[str, Any]]]:
    export(store, out, ExportRequest(include_archived=True, **request))
    files = {name: out / f"{name}.ndjson" for name in ("Observation", "Provenance", "AuditEvent")}
    return {  # an empty output is left out of the export
        name: [orjson.loads(line) for line in path.read_bytes().splitlines()]
        if path.exists()
        else []
        for name, path in files.items()
    }


def _ids(resources: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in resources if not is_summary(r)}


def _store(engine: Engine, tmp_path: Path) -> Store:
    write_ndjson(tmp_path / "first.ndjson", _minutes("a", 1, 60))
    write_ndjson(tmp_path / "second.ndjson", _minutes("b", 3, 5))
    ingest_paths(engine, [str(tmp_path / "first.ndjson")], clock=lambda: T1)
    consolidate(
        Store(engine, tmp_path / "archive", clock=lambda: T2), load_policy(), until_ms=UNTIL
    )
    ingest_paths(engine, [str(tmp_path / "second.ndjson")], clock=lambda: T3)
    return Store(engine, tmp_path / "archive", clock=lambda: T3 + 1)


def test_since_is_when_medsleep_stored_or_made_a_resource(engine: Engine, tmp_path: Path) -> None:
    store = _store(engine, tmp_path)
    everything = _exported(store, tmp_path / "all")
    assert sum(map(is_summary, everything["Observation"])) > 0  # the first hour was collapsed
    assert {f"b{i}" for i in range(5)} <= _ids(everything["Observation"])

    # after the consolidation: only the second ingest, though measured before the first
    latest = _exported(store, tmp_path / "t3", updated_since_ms=T3)
    assert _ids(latest["Observation"]) == {f"b{i}" for i in range(5)}
    assert latest["Provenance"] == []
    # the second ingest's event, and the export just before (audited at T3 + 1)
    assert {parse_iso_ms(e["recorded"]) for e in latest["AuditEvent"]} == {T3, T3 + 1}

    # from the consolidation on: its summaries and provenance too, not the first ingest's
    # originals (hot or archived)
    since_run = _exported(store, tmp_path / "t2", updated_since_ms=T2)
    assert _ids(since_run["Observation"]) == {f"b{i}" for i in range(5)}
    summaries = [r for r in since_run["Observation"] if is_summary(r)]
    assert len(summaries) == sum(map(is_summary, everything["Observation"]))
    assert len(since_run["Provenance"]) == len(summaries)


def test_a_batch_still_open_at_since_counts(engine: Engine, tmp_path: Path) -> None:
    store = _store(engine, tmp_path)
    with engine.begin() as conn:  # the second ingest as if still writing when asked
        conn.execute(
            update(INGEST_BATCH).where(INGEST_BATCH.c.started_ms == T3).values(finished_ms=None)
        )
    later = _exported(store, tmp_path / "later", updated_since_ms=T3 + 10)
    assert _ids(later["Observation"]) == {f"b{i}" for i in range(5)}
