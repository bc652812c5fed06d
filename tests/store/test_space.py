"""Space: a night that archives most of the hot store hands the pages back; ``db stats``
says what the store holds; an old store switches over with ``db vacuum``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsleep.cli import app
from medsleep.consolidate.job import consolidate
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.read.space import store_stats
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.space import INCREMENTAL, auto_vacuum_mode, return_space, store_bytes
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SAMPLE

UNTIL = parse_iso_ms("2027-01-01T00:00:00+00:00")
runner = CliRunner()


def _file_bytes(url: str) -> int:
    path = Path(url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def test_a_new_sqlite_store_uses_incremental_auto_vacuum(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    assert auto_vacuum_mode(engine) == INCREMENTAL
    engine.dispose()


def test_reading_an_existing_store_leaves_its_file_byte_identical(sqlite_url: str) -> None:
    # Setting auto_vacuum on every connection rewrote the header of an existing file.
    engine = open_store(sqlite_url)
    ingest_paths(engine, [SAMPLE])
    engine.dispose()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    before = path.read_bytes()
    engine = open_store(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM reading").scalar_one() > 0
    engine.dispose()
    assert path.read_bytes() == before
    assert auto_vacuum_mode(open_store(sqlite_url)) == INCREMENTAL


def test_consolidation_returns_the_freed_pages(sqlite_url: str, tmp_path: Path) -> None:
    engine = open_store(sqlite_url)
    ingest_paths(engine, [SAMPLE])
    before = _file_bytes(sqlite_url)
    report = consolidate(Store.open(sqlite_url, tmp_path / "arch"), load_policy(), until_ms=UNTIL)
    assert report.collapsed > 0.9 * report.readings_in
    assert report.space_returned
    assert report.store_bytes_before >= before
    # measured before the run's row and audit events are written: a few pages more since
    slack = 64 * 1024
    assert report.store_bytes_after <= store_bytes(engine) <= report.store_bytes_after + slack
    after = _file_bytes(sqlite_url)
    assert after <= report.store_bytes_after + slack
    # The sample is almost all normal, so most of it is archived; what stays is the retained
    # readings, the summaries and resource_seen's duplicate keys (about 60% of what is left).
    assert after < 0.3 * before
    engine.dispose()


def test_an_old_store_reuses_pages_until_vacuum_switches_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:  # as medsleep created stores before auto-vacuum
        conn.execute("PRAGMA auto_vacuum=0")
        conn.execute("CREATE TABLE made_before (x)")
    engine = open_store(sqlite_url)
    assert auto_vacuum_mode(engine) == 0
    ingest_paths(engine, [SAMPLE])
    report = consolidate(Store.open(sqlite_url, tmp_path / "arch"), load_policy(), until_ms=UNTIL)
    assert not report.space_returned
    assert report.store_bytes_after >= report.store_bytes_before  # freed, not returned
    freed = store_stats(engine).free_bytes
    assert freed > 0.5 * report.store_bytes_before
    engine.dispose()

    code = runner.invoke(app, ["db", "vacuum", "--db", sqlite_url]).exit_code
    assert code == 0
    engine = open_store(sqlite_url)
    assert auto_vacuum_mode(engine) == INCREMENTAL
    assert store_stats(engine).free_bytes == 0
    # what the night left live, packed (the archived versions' table grew the file a little)
    assert _file_bytes(sqlite_url) <= report.store_bytes_after - freed
    assert return_space(engine).returned
    engine.dispose()


def test_db_stats_counts_what_the_store_and_archive_hold(db_url: str, tmp_path: Path) -> None:
    engine = open_store(db_url)
    ingest_paths(engine, [SAMPLE])
    report = consolidate(Store.open(db_url, tmp_path / "arch"), load_policy(), until_ms=UNTIL)
    engine.dispose()
    result = runner.invoke(app, ["db", "stats", "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["readings_by_state"] == {"retained": report.retained}
    assert stats["hot_readings"] == report.retained
    tables = {t["table"]: t for t in stats["tables"]}
    assert tables["reading"]["rows"] == report.retained
    assert all(t["bytes"] > 0 for t in tables.values())
    assert sum(m["rows"] for m in stats["archive"]) == report.archived
    assert sum(m["files"] for m in stats["archive"]) == report.archive_files
    assert {m["state"] for m in stats["archive"]} == {"active"}
    assert stats["store_bytes"] >= sum(t["bytes"] for t in tables.values()) or (
        stats["auto_vacuum"] == "n/a"
    )
    text = runner.invoke(app, ["db", "stats", "--db", db_url])
    assert text.exit_code == 0
    assert "reading" in text.stdout
    assert "archive" in text.stdout


@pytest.mark.postgres
def test_return_space_on_postgres_changes_nothing(postgres_admin_url: str) -> None:
    from tests.pg import create_database

    engine = open_store(create_database(postgres_admin_url))
    done = return_space(engine)
    assert (done.returned, done.bytes_before > 0) == (False, True)
    engine.dispose()
