"""Versions whose readings are all archived are kept by a 16-byte digest of their key
(store.archived_versions): after a night re-ingest is still a duplicate, a new version still
supersedes and a late old one still lands superseded, HTTP ingest and the server's reads still
know them, restore moves them back, and an upgraded store behaves as a fresh one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from medsleep.archive.restore import restore
from medsleep.consolidate.job import consolidate
from medsleep.ingest import ingest_paths
from medsleep.ingest.pipeline import IngestReport
from medsleep.ingest.request import ingest_request
from medsleep.ingest.sources import InputRecord
from medsleep.policy import load_policy
from medsleep.server.hot_store import read_observation, versions_of
from medsleep.store import archived_versions, space
from medsleep.store.archived_versions import (
    DIGEST_BYTES,
    ArchivedVersionsDowngradeError,
    key_digest,
    stored_versions,
)
from medsleep.store.engine import _alembic_config, create_store_engine, open_store
from medsleep.store.handle import Store
from medsleep.store.tables import ReadingState
from medsleep.timefmt import parse_iso_ms
from tests.helpers import observation, readings, write_ndjson
from tests.pg import create_database

UNTIL = parse_iso_ms("2027-01-01T00:00:00+00:00")


def _resources(
    n: int, version: str = "1", patient: str = "p1", prefix: str = "hr"
) -> list[dict[str, Any]]:
    """A normal night of heart rates, one a minute: almost all of it collapses."""
    return [
        observation(
            f"{prefix}-{i}",
            value=70 + i % 5,
            when=f"2026-01-05T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
            version=version,
            patient=patient,
        )
        for i in range(n)
    ]


def _ingest(engine: Engine, path: Path, resources: list[dict[str, Any]]) -> IngestReport:
    report = ingest_paths(engine, [write_ndjson(path, resources)])
    assert report.balanced
    return report


def _counts(engine: Engine) -> tuple[int, int]:
    """Rows of resource_seen and of resource_archived."""
    with engine.connect() as conn:
        seen = conn.execute(text("SELECT count(*) FROM resource_seen")).scalar_one()
        archived = conn.execute(text("SELECT count(*) FROM resource_archived")).scalar_one()
    return int(seen), int(archived)


def _night(engine: Engine, db_url: str, archive: Path) -> Store:
    store = Store.open(db_url, archive)
    report = consolidate(store, load_policy(), until_ms=UNTIL)
    assert report.collapsed > 0
    return store


def test_a_night_moves_archived_versions_to_their_digests(db_url: str, tmp_path: Path) -> None:
    engine = open_store(db_url)
    resources = _resources(600)
    _ingest(engine, tmp_path / "in.ndjson", resources)
    assert _counts(engine) == (600, 0)
    _night(engine, db_url, tmp_path / "arch")
    hot_keys = {r["resource_key"] for r in readings(engine)}
    seen, archived = _counts(engine)
    assert seen == len(hot_keys) < 100  # only the versions with hot readings keep their key
    assert seen + archived == 600
    with engine.connect() as conn:
        digests = [
            bytes(d) for (d,) in conn.execute(text("SELECT key_digest FROM resource_archived"))
        ]
        keys = {"Observation/" + str(r["id"]) for r in resources} - hot_keys
    assert all(len(d) == DIGEST_BYTES for d in digests)
    assert set(digests) == {key_digest(k) for k in keys}
    engine.dispose()


def test_re_ingest_after_the_night_is_a_duplicate(db_url: str, tmp_path: Path) -> None:
    engine = open_store(db_url)
    resources = _resources(600)
    _ingest(engine, tmp_path / "in.ndjson", resources)
    _night(engine, db_url, tmp_path / "arch")
    hot = len(readings(engine))
    again = _ingest(engine, tmp_path / "again.ndjson", resources)
    assert (again.stored, again.duplicates, again.readings) == (0, 600, 0)
    assert len(readings(engine)) == hot
    engine.dispose()


def test_a_new_version_of_an_archived_resource_supersedes_and_a_late_one_does_not(
    db_url: str, tmp_path: Path
) -> None:
    engine = open_store(db_url)
    _ingest(engine, tmp_path / "in.ndjson", _resources(600, version="2"))
    _night(engine, db_url, tmp_path / "arch")
    archived_key = "Observation/hr-301"
    assert not readings(engine, resource_key=archived_key)  # its reading was archived
    newer = observation("hr-301", value=74, when="2026-01-05T05:01:00Z", version="3")
    late = observation("hr-302", value=71, when="2026-01-05T05:02:00Z", version="1")
    report = _ingest(engine, tmp_path / "new.ndjson", [newer, late])
    assert (report.stored, report.duplicates) == (2, 0)
    assert [r["state"] for r in readings(engine, resource_key=archived_key)] == [ReadingState.RAW]
    # version 1 is older than the archived version 2: stored, never active
    assert [r["state"] for r in readings(engine, resource_key="Observation/hr-302")] == [
        ReadingState.SUPERSEDED
    ]
    assert versions_of(engine, archived_key).seen == {"2", "3"}
    assert versions_of(engine, archived_key).next_version() == "4"
    engine.dispose()


def test_restore_moves_the_versions_back_and_re_ingest_stays_idempotent(
    db_url: str, tmp_path: Path
) -> None:
    engine = open_store(db_url)
    resources = _resources(600)
    _ingest(engine, tmp_path / "in.ndjson", resources)
    store = _night(engine, db_url, tmp_path / "arch")
    with engine.connect() as conn:
        run_id = int(conn.execute(text("SELECT max(id) FROM run")).scalar_one())
    back = restore(store, run_id=run_id)
    assert back.readings > 0
    assert _counts(engine) == (600, 0)
    assert len(readings(engine)) == 600
    with engine.connect() as conn:
        batches = {int(b) for (b,) in conn.execute(text("SELECT batch_id FROM resource_seen"))}
    assert len(batches) == 1  # the version keeps the batch that stored it
    again = _ingest(engine, tmp_path / "again.ndjson", resources)
    assert (again.stored, again.duplicates) == (0, 600)
    assert len(readings(engine)) == 600
    engine.dispose()


def test_http_ingest_and_reads_know_archived_versions(db_url: str, tmp_path: Path) -> None:
    engine = open_store(db_url)
    resources = _resources(600)
    _ingest(engine, tmp_path / "in.ndjson", resources)
    _night(engine, db_url, tmp_path / "arch")
    assert read_observation(engine, "hr-301").status == "archived"
    assert read_observation(engine, "hr-301", "1").status == "archived"
    assert read_observation(engine, "hr-301", "2").status == "missing"
    assert read_observation(engine, "nobody").status == "missing"
    records = [
        InputRecord("http", f"entry {i}", orjson.dumps(r))
        for i, r in enumerate([resources[301], observation("fresh-1", version="1")])
    ]
    result = ingest_request(engine, records, source="http", actor="test", per_entry=True)
    assert [e.outcome for e in result.entries] == ["duplicate", "created"]
    assert (result.report.stored, result.report.duplicates) == (1, 1)
    engine.dispose()


def test_stored_versions_reads_both_tables_in_groups(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archived_versions, "_GROUP", 700)  # three statements, the last short
    _ingest(sqlite_engine, tmp_path / "in.ndjson", _resources(2000))
    _night(sqlite_engine, f"sqlite:///{tmp_path / 'medsleep.db'}", tmp_path / "arch")
    keys = [f"Observation/hr-{i}" for i in range(2000)] + ["Observation/never"]
    with sqlite_engine.connect() as conn:
        found = stored_versions(conn, keys)
    assert found.keys() == set(keys) - {"Observation/never"}
    assert all(versions.keys() == {"1"} for versions in found.values())


def test_stored_versions_before_any_night_skips_the_digests_and_after_one_finds_both(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digested: list[str] = []

    def counting_digest(key: str) -> bytes:
        digested.append(key)
        return key_digest(key)

    monkeypatch.setattr(archived_versions, "key_digest", counting_digest)
    _ingest(sqlite_engine, tmp_path / "in.ndjson", _resources(300))
    wanted = [f"Observation/hr-{i}" for i in range(300)] + ["Observation/never"]
    with sqlite_engine.connect() as conn:
        before = stored_versions(conn, wanted)
    assert before.keys() == set(wanted) - {"Observation/never"}
    assert digested == []  # nothing archived yet: the hot probe alone answers
    _night(sqlite_engine, f"sqlite:///{tmp_path / 'medsleep.db'}", tmp_path / "arch")
    _ingest(sqlite_engine, tmp_path / "new.ndjson", _resources(5, prefix="new"))
    with sqlite_engine.connect() as conn:
        after = stored_versions(conn, [*wanted, "Observation/new-0"])
    assert after.keys() == before.keys() | {"Observation/new-0"}  # archived and hot alike
    assert after["Observation/new-0"] == {"1": 2}  # the second batch's
    assert all(after[k] == {"1": 1} for k in before)


def test_a_night_stopped_before_the_move_is_moved_by_the_next(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_store(db_url)
    resources = _resources(600)
    _ingest(engine, tmp_path / "in.ndjson", resources)
    with monkeypatch.context() as patched:  # as if the process ended after the shards
        patched.setattr(space, "compact_released", lambda conn: 0)
        _night(engine, db_url, tmp_path / "arch")
    assert _counts(engine) == (600, 0)  # bodiless in resource_seen, still known
    again = _ingest(engine, tmp_path / "again.ndjson", resources)
    assert (again.stored, again.duplicates) == (0, 600)
    _ingest(engine, tmp_path / "next.ndjson", _resources(600, patient="p2", prefix="next"))
    _night(engine, db_url, tmp_path / "arch")
    seen, archived = _counts(engine)
    assert archived > 1000  # both nights' versions
    assert seen + archived == 1200
    engine.dispose()


def _old_store(db_url: str, tmp_path: Path, resources: list[dict[str, Any]]) -> Engine:
    """A store as revision 0008 left it after a night: released versions bodiless in
    resource_seen."""
    engine = open_store(db_url)
    _ingest(engine, tmp_path / "in.ndjson", resources)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0008")  # nothing archived yet: allowed
        conn.execute(
            text(
                "UPDATE resource_seen SET body = NULL, first_id = NULL, last_id = NULL "
                "WHERE resource_key <> 'Observation/hr-0'"
            )
        )
        conn.execute(text("DELETE FROM reading WHERE resource_key <> 'Observation/hr-0'"))
    engine.dispose()
    return create_store_engine(db_url)


def test_an_upgraded_store_dedupes_as_a_fresh_one(db_url: str, tmp_path: Path) -> None:
    resources = _resources(300)
    _old_store(db_url, tmp_path, resources).dispose()
    engine = open_store(db_url)  # upgrades to the head
    assert _counts(engine) == (1, 299)
    again = _ingest(engine, tmp_path / "again.ndjson", resources)
    assert (again.stored, again.duplicates) == (0, 300)
    newer = _ingest(engine, tmp_path / "v2.ndjson", [observation("hr-7", version="2")])
    assert (newer.stored, newer.duplicates) == (1, 0)
    assert versions_of(engine, "Observation/hr-7").seen == {"1", "2"}
    engine.dispose()


def test_the_downgrade_refuses_while_versions_are_archived(db_url: str, tmp_path: Path) -> None:
    engine = open_store(db_url)
    _ingest(engine, tmp_path / "in.ndjson", _resources(300))
    _night(engine, db_url, tmp_path / "arch")
    with pytest.raises(ArchivedVersionsDowngradeError, match="archived by key digest"):  # noqa: SIM117
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0008")
    assert _counts(engine)[1] > 0  # nothing was lost
    engine.dispose()


# --- the invariant: ingest -> night -> re-ingest stores nothing new, counts balance --------

_BASE = 180  # three hours of one heart rate a minute: enough for the night to collapse
_extra = st.fixed_dictionaries(
    {
        "rid": st.integers(0, _BASE + 20),  # mostly resources of the base, a few new ones
        "version": st.sampled_from(["1", "2", "3", "a"]),
        "value": st.one_of(st.integers(55, 95), st.sampled_from([20, 190])),
        "valid": st.booleans() | st.just(True),
    }
)


def _built(rid: int, version: str = "1", value: int = 72, valid: bool = True) -> dict[str, Any]:
    minute = rid % (24 * 60)
    resource = observation(
        f"o-{rid}",
        value=value,
        when=f"2026-01-05T{minute // 60:02d}:{minute % 60:02d}:00Z",
        version=version,
    )
    if not valid:
        resource["status"] = "not-a-status"  # quarantined
    return resource


def _fresh_url(backend: str, tmp_path_factory: pytest.TempPathFactory, admin: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('inv') / 'medsleep.db'}"
    assert admin is not None
    return create_database(admin)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(extras=st.lists(_extra, max_size=40), order=st.randoms())
def test_re_ingest_after_a_night_stores_nothing_new(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    extras: list[dict[str, Any]],
    order: Any,
) -> None:
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgres" else None
    db_url = _fresh_url(backend, tmp_path_factory, admin)
    work = tmp_path_factory.mktemp("work")
    engine = open_store(db_url)
    resources = [_built(rid, value=70 + rid % 5) for rid in range(_BASE)]
    resources += [_built(**extra) for extra in extras]
    order.shuffle(resources)
    first = _ingest(engine, work / "in.ndjson", resources)
    known = _counts(engine)
    consolidate(Store.open(db_url, work / "arch"), load_policy(), until_ms=UNTIL)
    assert _counts(engine)[1] > 0  # the night archived versions
    assert sum(_counts(engine)) == sum(known) == first.stored  # every version still known
    hot = sorted((r["resource_key"], r["resource_version"], r["state"]) for r in readings(engine))
    shuffled = list(resources)
    order.shuffle(shuffled)
    again = _ingest(engine, work / "again.ndjson", shuffled)
    assert again.stored == 0
    assert again.readings == 0
    assert (again.quarantined, again.skipped) == (first.quarantined, first.skipped)
    assert again.duplicates == first.stored + first.duplicates
    assert (
        sorted((r["resource_key"], r["resource_version"], r["state"]) for r in readings(engine))
        == hot
    )
    engine.dispose()
