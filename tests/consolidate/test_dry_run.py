"""``consolidate --dry-run``: the real run's decision, reported, with nothing changed.

The store and the archive folder are byte-identical after a dry run (SQLite; PostgreSQL: every
table's rows), and the dry run's figures are exactly what the real run then does, late data
(summaries replaced) included."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, inspect, select, text

from medsleep.consolidate.dry_run import DRY_RUN_ACTION, dry_run
from medsleep.consolidate.job import consolidate
from medsleep.consolidate.shard import ShardResult
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.tables import AUDIT_EVENT, RETENTION, RUN
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SAMPLE
from tests.helpers import observation, write_ndjson

MORNING = parse_iso_ms("2026-01-05T12:00:00+00:00")
LATER = parse_iso_ms("2027-01-01T00:00:00+00:00")
# the report fields of a real run a dry run must predict exactly
PREDICTED = [f.name for f in fields(ShardResult) if f.name not in ("patient", "held")]


def late_readings(tmp_path: Path) -> Path:
    """Readings that arrive after the morning was consolidated, inside its buckets."""
    late = [
        observation(f"late-{i}", patient="icu-0001", value=70 + i, when=f"2026-01-05T06:{i:02}:30Z")
        for i in range(5)
    ]
    return write_ndjson(tmp_path / "late.ndjson", late)


def prepared(tmp_path: Path, url: str) -> Store:
    """A store with a consolidated morning, late data for it, and an afternoon still raw."""
    engine = open_store(url)
    ingest_paths(engine, [str(SAMPLE)])
    store = Store(engine, tmp_path / "archive")
    consolidate(store, load_policy(), until_ms=MORNING)
    ingest_paths(engine, [str(late_readings(tmp_path))])
    return store


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def table_digests(engine: Engine) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of its rows (PostgreSQL)."""
    out = {}
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            count = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
            digest = conn.execute(
                text(f'SELECT md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) '
                     f'FROM "{table}" t')
            ).scalar_one()  # fmt: skip
            out[table] = (int(count), str(digest))
    return out


def retained_by_reason(engine: Engine, run_id: int) -> dict[str, int]:
    reason = RETENTION.c.kind + ":" + RETENTION.c.rule
    query = (
        select(reason, func.count(RETENTION.c.reading_id.distinct()))
        .where(RETENTION.c.run_id == run_id)
        .group_by(reason)
    )
    with engine.connect() as conn:
        return {str(r): int(n) for r, n in conn.execute(query)}


def test_a_dry_run_leaves_the_sqlite_store_and_archive_byte_identical(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'm.db'}"
    (tmp_path / "db").mkdir()
    store = prepared(tmp_path, url)
    store.close()
    before = folder_digest(tmp_path / "db"), folder_digest(tmp_path / "archive")

    store = Store.open(url, tmp_path / "archive")
    report = dry_run(store, load_policy(), until_ms=LATER)
    store.close()

    assert report.totals.readings_in > 0
    assert report.totals.superseded_summaries > 0  # the late data's cells were decided too
    assert (folder_digest(tmp_path / "db"), folder_digest(tmp_path / "archive")) == before


@pytest.mark.postgres
def test_a_dry_run_changes_no_row_on_postgresql(tmp_path: Path, postgres_admin_url: str) -> None:
    from tests.pg import create_database

    store = prepared(tmp_path, create_database(postgres_admin_url))
    before = table_digests(store.engine), folder_digest(tmp_path / "archive")
    report = dry_run(store, load_policy(), until_ms=LATER)
    assert report.totals.collapsed > 0
    assert (table_digests(store.engine), folder_digest(tmp_path / "archive")) == before
    store.close()


@pytest.mark.parametrize("executor", ["local", "processes:2"])
def test_the_dry_run_predicts_the_real_run(tmp_path: Path, executor: str) -> None:
    from medsleep.consolidate.executors import parse_executor

    store = prepared(tmp_path, f"sqlite:///{tmp_path / 'm.db'}")
    policy, spec = load_policy(), parse_executor(executor)
    preview = dry_run(store, policy, until_ms=LATER, executor=spec, record=True)
    real = consolidate(store, policy, until_ms=LATER, executor=spec)

    assert real.status == "committed"
    assert {k: getattr(preview.totals, k) for k in PREDICTED} == {
        k: getattr(real, k) for k in PREDICTED
    }
    assert preview.totals.readings_in == preview.totals.retained + preview.totals.collapsed
    assert real.run_id is not None
    assert dict(preview.by_reason) == retained_by_reason(store.engine, real.run_id)
    per_patient = {p["patient"]: p for p in preview.as_json()["patients"]}
    assert sum(p["readings_in"] for p in per_patient.values()) == real.readings_in
    with store.engine.connect() as conn:
        runs = conn.execute(select(func.count()).select_from(RUN)).scalar_one()
        events = [
            row.action
            for row in conn.execute(select(AUDIT_EVENT.c.action).order_by(AUDIT_EVENT.c.seq))
        ]
    assert runs == 2  # the morning and the real run: the dry run wrote none
    assert events.count(DRY_RUN_ACTION) == 1


def test_a_dry_run_of_nothing_says_so(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "archive")
    report = dry_run(store, load_policy(), until_ms=LATER)
    assert report.as_json()["status"] == "nothing-to-do"
    assert report.as_json()["patients"] == []
    store.close()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["p1", "p2"]),
            st.sampled_from(["8867-4", "59408-5", "X-42"]),
            st.integers(min_value=0, max_value=600),  # minute of the day
            st.floats(min_value=20, max_value=200, allow_nan=False),
        ),
        min_size=1,
        max_size=120,
        unique_by=lambda r: (r[0], r[1], r[2]),
    )
)
@settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.too_slow])
def test_a_dry_run_predicts_any_real_run(rows: list[tuple[str, str, int, float]]) -> None:
    units = {"8867-4": "/min", "59408-5": "%", "X-42": "1"}
    resources = [
        observation(
            f"{patient}-{code}-{minute}",
            patient=patient,
            code=code,
            unit=units[code],
            value=min(value, 100.0) if code == "59408-5" else value,
            when=f"2026-01-05T{minute // 60:02}:{minute % 60:02}:00Z",
        )
        for patient, code, minute, value in rows
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = Store.open(f"sqlite:///{work / 'm.db'}", work / "archive")
        ingest_paths(store.engine, [str(write_ndjson(work / "in.ndjson", resources))])
        preview = dry_run(store, load_policy(), until_ms=LATER)
        real = consolidate(store, load_policy(), until_ms=LATER)
        by_rule = retained_by_reason(store.engine, real.run_id) if real.run_id else {}
        store.close()
    assert {k: getattr(preview.totals, k) for k in PREDICTED} == {
        k: getattr(real, k) for k in PREDICTED
    }
    assert dict(preview.by_reason) == by_rule


@pytest.mark.slow
def test_a_dry_run_on_a_dask_cluster_reports_what_a_local_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    from distributed import LocalCluster

    from medsleep.consolidate.executors import parse_executor

    # spawned Dask workers re-import __main__ (see test_reliability's Dask test)
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "archive")
    ingest_paths(store.engine, [str(SAMPLE)])
    local = dry_run(store, load_policy(), until_ms=LATER)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        spec = parse_executor(cluster.scheduler_address.replace("tcp://", "dask://"))
        remote = dry_run(store, load_policy(), until_ms=LATER, executor=spec)
    store.close()
    assert remote.executor.startswith("tcp://")
    assert remote.as_json()["patients"] == local.as_json()["patients"]
    assert remote.by_reason == local.by_reason
