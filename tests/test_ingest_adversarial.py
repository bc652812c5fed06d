"""Ingest under hostile input (issue 12): one bad record never costs the good ones, and every
file walked is accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from medsleep.ingest import ingest_paths
from tests.helpers import observation, quarantined, readings

DEEP = 10_000


def _deep_object() -> str:
    return '{"a":' * DEEP + "1" + "}" * DEEP


def _deep_observation() -> str:
    head = json.dumps(observation("deep", version="1"))[:-1]
    return head + ', "extension": ' + "[" * DEEP + "]" * DEEP + "}"


@pytest.mark.parametrize("workers", [0, 2])
def test_deeply_nested_records_are_quarantined_and_the_rest_goes_on(
    tmp_path: Path, sqlite_engine: Engine, workers: int
) -> None:
    good = [json.dumps(observation(f"g{i}", version="1")) for i in range(6)]
    lines = [*good[:3], _deep_object(), _deep_observation(), *good[3:]]
    path = tmp_path / "deep.ndjson"
    path.write_text("\n".join(lines) + "\n")
    report = ingest_paths(sqlite_engine, [str(path)], workers=workers)
    assert (report.resources, report.stored, report.quarantined) == (8, 6, 2)
    assert report.balanced
    assert [q["position"] for q in quarantined(sqlite_engine)] == ["line 4", "line 5"]
    assert all("depth" in q["error"] for q in quarantined(sqlite_engine))
    assert len(readings(sqlite_engine)) == 6


def test_concurrent_ingests_of_the_same_input_store_each_resource_once(
    tmp_path: Path, engine: Engine
) -> None:
    import threading

    from medsleep.synth import generate

    generate(tmp_path / "in", patients=3, days=0.1, seed=3)
    path = str(tmp_path / "in" / "observations.ndjson")
    reports: list[object] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def ingest() -> None:
        start.wait()
        try:
            reports.append(ingest_paths(engine, [path], chunk_size=200))
        except BaseException as exc:  # noqa: BLE001  (asserted below, in the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=ingest) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    resources = reports[0].resources  # type: ignore[attr-defined]
    assert sum(r.stored for r in reports) == resources  # type: ignore[attr-defined]
    assert sum(r.duplicates for r in reports) == 2 * resources  # type: ignore[attr-defined]
    keys = {(r["resource_key"], r["part"]) for r in readings(engine)}
    assert len(keys) == len(readings(engine))
