"""Crashes and concurrency: SIGKILL at random points, ingest during consolidation, Dask."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from medsleep.archive.verify import verify_archive
from medsleep.consolidate.executors import parse_executor
from medsleep.consolidate.job import consolidate
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.models import Summary
from medsleep.synth import generate
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SAMPLE
from tests.helpers import check_conservation, reading_ids, readings

UNTIL = "2027-01-01T00:00:00+00:00"
POLICY = load_policy()
KILL_POINTS = 20


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[int]]:
    """A store with 8 patients × 3 hours ingested, checkpointed into one file."""
    base = tmp_path_factory.mktemp("template")
    generate(base / "in", patients=8, days=0.125, seed=5)
    db = base / "template.db"
    engine = open_store(f"sqlite:///{db}")
    ingest_paths(engine, [str(base / "in" / "observations.ndjson")])
    ids = reading_ids(engine)
    engine.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, ids


def _consolidate_cmd(db: Path, archive: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "medsleep",
        "consolidate",
        "--db",
        f"sqlite:///{db}",
        "--archive",
        str(archive),
        "--until",
        UNTIL,
        "--json",
        "--quiet",
    ]


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    template: tuple[Path, set[int]], tmp_path: Path
) -> None:
    source, ids = template
    started = time.perf_counter()
    subprocess.run(
        _consolidate_cmd(_fresh(source, tmp_path / "full"), tmp_path / "full" / "a"),
        check=True,
        capture_output=True,
    )
    full = time.perf_counter() - started
    rng = random.Random(20261125)
    killed_mid_run = 0
    for trial in range(KILL_POINTS):
        work = tmp_path / f"t{trial}"
        db = _fresh(source, work)
        archive = work / "archive"
        proc = subprocess.Popen(
            _consolidate_cmd(db, archive), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Kill within the first 60% of a reference run: on a loaded machine a trial can run
        # faster than the reference, and a kill after the end tests nothing.
        time.sleep(rng.uniform(0.1, 0.6 * full))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        proc.wait()
        engine = open_store(f"sqlite:///{db}")
        after = consolidate(
            Store.open(f"sqlite:///{db}", archive), POLICY, until_ms=parse_iso_ms(UNTIL)
        )
        assert after.status in ("committed", "nothing-to-do")
        check_conservation(engine, archive, ids)
        assert all(check.ok for check in verify_archive(Store(engine, archive)))
        engine.dispose()
    assert killed_mid_run >= KILL_POINTS // 2, "most kills must land while the job runs"


def _fresh(source: Path, work: Path) -> Path:
    work.mkdir(parents=True)
    db = work / "medsleep.db"
    shutil.copyfile(source, db)
    return db


def test_ingest_during_consolidation_loses_and_double_counts_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = open_store(url)
    generate(tmp_path / "early", patients=4, days=0.25, seed=8)
    generate(tmp_path / "late", patients=6, days=0.25, seed=9)  # overlaps patients and times
    ingest_paths(engine, [str(tmp_path / "early" / "observations.ndjson")])
    errors: list[BaseException] = []

    def ingest_late() -> None:
        try:
            ingest_paths(engine, [str(tmp_path / "late" / "observations.ndjson")], chunk_size=500)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test thread)
            errors.append(exc)

    thread = threading.Thread(target=ingest_late)
    thread.start()
    consolidate(Store.open(url, tmp_path / "a"), POLICY, until_ms=parse_iso_ms(UNTIL))
    thread.join()
    assert not errors
    ids = reading_ids(engine) | _archived_ids(engine, tmp_path / "a")
    consolidate(Store.open(url, tmp_path / "a"), POLICY, until_ms=parse_iso_ms(UNTIL))
    check_conservation(engine, tmp_path / "a", ids)
    assert not readings(engine, state="raw")


def _archived_ids(engine: object, archive: Path) -> set[int]:
    from medsleep.archive.index import summarised_readings

    table = Summary.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:  # type: ignore[attr-defined]
        active = conn.execute(select(table).where(table.c.state == "active")).all()
        return {int(i) for i in summarised_readings(conn, archive, active)["id"]}


@pytest.mark.slow
def test_dask_cluster_gives_the_same_result_as_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from distributed import LocalCluster

    # Dask spawns its workers, and a spawned child re-imports the parent's __main__; after
    # Streamlit's AppTest ran in this process that is a dashboard script, not importable here.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))

    results = []
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        for name, executor in (("local", "local"), ("dask", cluster.scheduler_address)):
            url = f"sqlite:///{tmp_path / name}.db"
            engine = open_store(url)
            ingest_paths(engine, [str(SAMPLE)])
            spec = parse_executor(executor.replace("tcp://", "dask://"))
            report = consolidate(
                Store.open(url, tmp_path / name),
                POLICY,
                until_ms=parse_iso_ms(UNTIL),
                executor=spec,
            )
            assert report.status == "committed"
            results.append(
                sorted((r["resource_key"], r["part"]) for r in readings(engine, state="retained"))
            )
            engine.dispose()
    assert results[0] == results[1]
    assert os.path.exists(tmp_path / "dask")
