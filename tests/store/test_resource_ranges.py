"""Readings found by their resource version's id range (store.resource_ranges), not by an
index on ``reading.resource_key``: exact after ingest, new versions, retractions, a night and
restore, concurrent writers, and when a store from before the ranges is upgraded and back."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
from alembic import command
from sqlalchemy import Engine, inspect, select, text

from medsleep.archive.restore import restore
from medsleep.consolidate.job import consolidate
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.server.hot_store import read_observation, versions_of
from medsleep.store.engine import _alembic_config, create_store_engine, open_store
from medsleep.store.handle import Store
from medsleep.store.resource_ranges import readings_of
from medsleep.store.tables import READING
from medsleep.timefmt import parse_iso_ms
from tests.helpers import observation

UNTIL = parse_iso_ms("2027-01-01T00:00:00+00:00")


def _ranges(engine: Engine) -> tuple[dict[tuple[str, str], tuple[int, int]], dict[object, object]]:
    """Each version's (first_id, last_id) as stored, and as its readings have them."""
    with engine.connect() as conn:
        stored = {
            (k, v): (lo, hi)
            for k, v, lo, hi in conn.execute(
                text("SELECT resource_key, resource_version, first_id, last_id FROM resource_seen")
            )
        }
        actual = {
            (k, v): (lo, hi)
            for k, v, lo, hi in conn.execute(
                text(
                    "SELECT resource_key, resource_version, MIN(id), MAX(id) FROM reading "
                    "GROUP BY resource_key, resource_version"
                )
            )
        }
    return stored, actual


def _exact(engine: Engine) -> None:
    """Every version with hot readings keeps exactly their range; one without keeps none."""
    stored, actual = _ranges(engine)
    assert set(actual) <= set(stored)
    assert {pair: stored[pair] for pair in actual} == actual
    assert all(stored[pair] == (None, None) for pair in set(stored) - set(actual))


def _lines(n: int, version: str = "1", start: int = 0) -> list[str]:
    out = []
    for i in range(start, start + n):
        when = f"2026-01-05T{i // 60 % 24:02d}:{i % 60:02d}:00Z"
        if i % 4 == 0:  # a panel: two readings of one version
            resource = observation(f"bp-{i}", code="85354-9", when=when, version=version)
            del resource["valueQuantity"]
            resource["component"] = [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": c}]},
                    "valueQuantity": {"value": v, "unit": "mm[Hg]", "code": "mm[Hg]"},
                }
                for c, v in (("8480-6", 120), ("8462-4", 80))
            ]
        else:
            resource = observation(f"hr-{i}", value=60 + i % 30, when=when, version=version)
        out.append(orjson.dumps(resource).decode())
    return out


def _ingest(engine: Engine, path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")
    assert ingest_paths(engine, [path]).balanced


def _ids_of(engine: Engine, key: str) -> list[int]:
    with engine.connect() as conn:
        query = select(READING.c.id).where(readings_of([key])).order_by(READING.c.id)
        by_range = [int(i) for i in conn.execute(query).scalars()]
        plain = select(READING.c.id).where(READING.c.resource_key == key).order_by(READING.c.id)
        assert by_range == [int(i) for i in conn.execute(plain).scalars()]
    return by_range


def test_ranges_are_exact_through_versions_a_night_and_restore(db_url: str, tmp_path: Path) -> None:
    engine = open_store(db_url)
    _ingest(engine, tmp_path / "a.ndjson", _lines(400))
    _exact(engine)
    assert len(_ids_of(engine, "Observation/bp-0")) == 2
    # a new version of some, mixed with new resources and a retraction, in one chunk
    newer = _lines(40, version="2") + _lines(30, start=400)
    retracted = orjson.loads(_lines(1, start=5)[0]) | {"status": "entered-in-error"}
    retracted["meta"] = {"versionId": "3"}
    _ingest(engine, tmp_path / "b.ndjson", [*newer, orjson.dumps(retracted).decode()])
    _exact(engine)
    assert versions_of(engine, "Observation/hr-1").current == "2"
    assert read_observation(engine, "hr-5").status == "gone"
    store = Store.open(db_url, tmp_path / "arch")
    night = consolidate(store, load_policy(), until_ms=UNTIL)
    assert night.collapsed > 0
    _exact(engine)  # released versions keep no range
    assert restore(store, run_id=night.run_id).readings == night.collapsed
    _exact(engine)
    assert read_observation(engine, "hr-2").status == "found"
    assert len(_ids_of(engine, "Observation/bp-48")) == 2
    assert len(_ids_of(engine, "Observation/bp-8")) == 4  # versions 1 (superseded) and 2
    engine.dispose()


def test_concurrent_writers_keep_exact_ranges(db_url: str, tmp_path: Path) -> None:
    engine = open_store(db_url)
    errors: list[BaseException] = []

    def ingest(n: int) -> None:
        try:
            _ingest(engine, tmp_path / f"{n}.ndjson", _lines(600, start=n * 1000))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    _exact(engine)
    for n in range(3):
        assert len(_ids_of(engine, f"Observation/bp-{n * 1000}")) == 2
    engine.dispose()


def test_a_store_from_before_the_ranges_is_carried_over_and_back(db_url: str) -> None:
    engine = create_store_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
    with engine.begin() as conn:  # the shape of a store before 0008
        for i in range(30):
            key = f"Observation/o-{i}"
            for version in ("1", "2") if i % 3 == 0 else ("1",):
                conn.execute(
                    text("INSERT INTO resource_seen VALUES (:k, :v, 1, NULL, NULL)"),
                    {"k": key, "v": version},
                )
                for part in (0, 1) if i % 2 else (-1,):
                    conn.execute(
                        text(
                            "INSERT INTO reading (patient, code_system, code, effective_ms, "
                            "value, unit, orig_value, orig_unit, resource_key, "
                            "resource_version, part, status, batch_id, state) VALUES ('p1', "
                            "'s', 'c', :t, 1, 'u', 1, 'u', :k, :v, :part, 'final', 1, 'raw')"
                        ),
                        {"t": i, "k": key, "v": version, "part": part},
                    )
        conn.execute(
            text("INSERT INTO resource_seen VALUES ('Observation/gone', '1', 1, NULL, NULL)")
        )
    engine.dispose()
    engine = open_store(db_url)  # upgrades to the head
    _exact(engine)
    stored, _ = _ranges(engine)
    # no readings and no body: 0009 keeps it by key digest, still known
    assert ("Observation/gone", "1") not in stored
    assert versions_of(engine, "Observation/gone").seen == {"1"}
    assert len(_ids_of(engine, "Observation/o-3")) == 4  # two versions of two parts
    assert "ix_reading_resource" not in {i["name"] for i in inspect(engine).get_indexes("reading")}
    with engine.begin() as conn:
        # 0009's downgrade refuses while a version is archived by digest only (see
        # tests/store/test_archived_versions.py): this one has no readings to restore
        conn.execute(text("DELETE FROM resource_archived"))
        command.downgrade(_alembic_config(conn), "0007")
    assert "ix_reading_resource" in {i["name"] for i in inspect(engine).get_indexes("reading")}
    assert "first_id" not in {c["name"] for c in inspect(engine).get_columns("resource_seen")}
    engine.dispose()
