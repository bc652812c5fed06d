"""SIGKILL at the worst moments (issue 12): first-use schema creation, an ingest batch."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medsleep.store.engine import current_revision, head_revision, open_store

SCHEMA_TRIALS = 16
_CREATE = """
import sys, time
from medsleep.store.engine import open_store
print("ready", flush=True)
started = time.perf_counter()
open_store(sys.argv[1]).dispose()
print(time.perf_counter() - started, flush=True)
"""


def _create_in_child(url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _CREATE, url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.slow
def test_sigkill_during_first_use_schema_creation_leaves_a_store_that_opens(
    tmp_path: Path,
) -> None:
    full = _create_in_child(f"sqlite:///{tmp_path / 'full.db'}")
    out, _ = full.communicate()
    creation = float(out.strip())
    rng = random.Random(12)
    killed = 0
    for trial in range(SCHEMA_TRIALS):
        url = f"sqlite:///{tmp_path / f't{trial}.db'}"
        proc = _create_in_child(url)
        time.sleep(rng.uniform(0.0, creation))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        engine = open_store(url)  # raised "table reading already exists" in 2 of 16
        assert current_revision(engine) == head_revision()
        engine.dispose()
    assert killed >= SCHEMA_TRIALS // 2, "most kills must land while the schema is created"


def test_killed_ingest_batch_becomes_interrupted_with_an_audit_event(tmp_path: Path) -> None:
    from sqlalchemy import select

    from medsleep.audit import verify_chain
    from medsleep.ingest import ingest_paths
    from medsleep.store.tables import AUDIT_EVENT, INGEST_BATCH
    from tests.helpers import ndjson_of, observation, write_ndjson

    url = f"sqlite:///{tmp_path / 'm.db'}"
    open_store(url).dispose()
    proc = subprocess.Popen(
        [sys.executable, "-m", "medsleep", "ingest", "-", "--db", url, "--quiet"],
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(ndjson_of([observation("a")]).encode())  # then the stream stalls
    proc.stdin.flush()
    engine = open_store(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(select(INGEST_BATCH.c.id)).first() is not None:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with engine.connect() as conn:
        assert conn.execute(select(INGEST_BATCH.c.status)).scalar_one() == "running"
    ingest_paths(engine, [str(write_ndjson(tmp_path / "b.ndjson", [observation("b")]))])
    with engine.connect() as conn:
        statuses = conn.execute(select(INGEST_BATCH.c.status).order_by(INGEST_BATCH.c.id)).all()
        actions = [a for (a,) in conn.execute(select(AUDIT_EVENT.c.action))]
        assert verify_chain(conn).ok
    assert [s for (s,) in statuses] == ["interrupted", "done"]
    assert actions == ["ingest.interrupted", "ingest.done"]
    engine.dispose()


def _orphaned_archive(tmp_path: Path) -> tuple[str, Path, int]:
    """A store as a consolidation killed between writing its archive files and committing
    leaves it: every file on disk unrecorded, every reading still hot."""
    import shutil
    import sqlite3

    from medsleep.consolidate.job import consolidate
    from medsleep.ingest import ingest_paths
    from medsleep.policy import load_policy
    from medsleep.store.handle import Store
    from medsleep.timefmt import parse_iso_ms
    from tests.conftest import SAMPLE
    from tests.helpers import readings

    db = tmp_path / "m.db"
    engine = open_store(f"sqlite:///{db}")
    ingest_paths(engine, [str(SAMPLE)])
    hot = len(readings(engine))
    engine.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(db, tmp_path / "twin.db")  # consolidated; ``db`` plays the killed run's
    archive = tmp_path / "archive"
    until = parse_iso_ms("2026-02-01T00:00:00+00:00")
    twin = f"sqlite:///{tmp_path / 'twin.db'}"
    store = Store.open(twin, archive)
    consolidate(store, load_policy(), until_ms=until)
    store.close()
    (archive / "2026" / ".run-9-9.parquet.x1.tmp").write_bytes(b"half a write")
    return f"sqlite:///{db}", archive, hot


def test_archive_verify_clean_removes_orphans_whose_readings_are_all_hot(
    tmp_path: Path,
) -> None:
    import json

    from typer.testing import CliRunner

    from medsleep.archive.files import iter_archive_files, iter_temp_files
    from medsleep.audit import verify_chain
    from medsleep.cli import app
    from medsleep.store.tables import AUDIT_EVENT
    from tests.helpers import readings

    url, archive, hot = _orphaned_archive(tmp_path)
    orphans = list(iter_archive_files(archive))
    assert orphans
    runner = CliRunner()
    other = f"sqlite:///{tmp_path / 'other.db'}"  # the wrong --db: nothing matches, nothing goes
    result = runner.invoke(
        app, ["archive", "verify", "--db", other, "--archive", str(archive), "--clean", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert list(iter_archive_files(archive)) == orphans
    wrong = json.loads(result.stdout)["cleaned"]
    assert len(wrong["kept"]) == len(orphans)
    assert wrong["temp_removed"] == ["2026/.run-9-9.parquet.x1.tmp"]  # never published: goes
    result = runner.invoke(
        app, ["archive", "verify", "--db", url, "--archive", str(archive), "--clean", "--json"]
    )
    assert result.exit_code == 0, result.output
    cleaned = json.loads(result.stdout)["cleaned"]
    assert sorted(cleaned["removed"]) == orphans
    assert cleaned["readings_in_removed"] > 0
    assert not list(iter_archive_files(archive))
    assert not list(iter_temp_files(archive))
    engine = open_store(url)
    assert len(readings(engine)) == hot  # nothing lost
    with engine.connect() as conn:
        from sqlalchemy import select

        actions = [a for (a,) in conn.execute(select(AUDIT_EVENT.c.action))]
        assert verify_chain(conn).ok
    assert actions[-1] == "archive.clean"
    engine.dispose()


def test_archive_verify_clean_waits_for_no_running_consolidation(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medsleep.archive.files import iter_archive_files
    from medsleep.cli import app
    from medsleep.store.locking import consolidation_lock

    url, archive, _ = _orphaned_archive(tmp_path)
    before = list(iter_archive_files(archive))
    engine = open_store(url)
    with consolidation_lock(engine):
        result = CliRunner().invoke(
            app, ["archive", "verify", "--db", url, "--archive", str(archive), "--clean"]
        )
    engine.dispose()
    assert result.exit_code == 4
    assert list(iter_archive_files(archive)) == before
