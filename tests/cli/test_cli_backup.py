"""``medsleep db backup``: an online, checked copy of the SQLite store that holds every commit
(the WAL's too), never replaces a file, is audited, and sends PostgreSQL to its own tools."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select
from typer.testing import CliRunner

from medsleep.audit import verify_chain
from medsleep.cli import app
from medsleep.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from medsleep.store.engine import open_store
from medsleep.store.tables import AUDIT_EVENT, READING
from tests.conftest import FIXTURES, SAMPLE
from tests.pg import create_database

runner = CliRunner()
REAL = FIXTURES / "real-labelled"


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _readings(url: str) -> int:
    with _connected(url) as conn:
        return int(conn.execute(select(func.count()).select_from(READING)).scalar_one())


def test_backup_copies_every_commit_checked_and_audited(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert runner.invoke(app, ["ingest", str(SAMPLE), "--db", url, "-q"]).exit_code == EXIT_OK
    wal = tmp_path / "m.db-wal"
    # a reader kept open keeps the WAL: the next ingest's commits stay in it, not in the file
    holder = sqlite3.connect(tmp_path / "m.db")
    try:
        holder.execute("SELECT count(*) FROM reading").fetchone()
        more = ["ingest", str(REAL / "mimic2b.ndjson.gz"), "--db", url, "-q"]
        assert runner.invoke(app, more).exit_code == EXIT_OK
        assert wal.exists()
        assert wal.stat().st_size > 0
        target = tmp_path / "copies" / "m-backup.db"
        target.parent.mkdir()
        result = runner.invoke(app, ["db", "backup", str(target), "--db", url, "--json"])
    finally:
        holder.close()
    assert result.exit_code == EXIT_OK, result.output
    report = json.loads(result.stdout)
    assert report["path"] == str(target.resolve())
    assert report["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert report["bytes"] == target.stat().st_size
    # a plain file that opens alone, holding every reading of the store
    assert not Path(f"{target}-wal").exists()
    assert _readings(f"sqlite:///{target}") == _readings(url) > 0
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind
    with _connected(url) as conn:
        last = conn.execute(
            select(AUDIT_EVENT.c.action, AUDIT_EVENT.c.details_json)
            .order_by(AUDIT_EVENT.c.seq.desc())
            .limit(1)
        ).one()
        assert verify_chain(conn).ok
    assert last.action == "db.backup"
    assert json.loads(last.details_json)["sha256"] == report["sha256"]


def test_backup_never_replaces_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert runner.invoke(app, ["ingest", str(SAMPLE), "--db", url, "-q"]).exit_code == EXIT_OK
    target = tmp_path / "there.db"
    target.write_bytes(b"yesterday's backup")
    result = runner.invoke(app, ["db", "backup", str(target), "--db", url])
    assert result.exit_code == EXIT_USAGE
    assert "never replaces" in result.stderr
    assert target.read_bytes() == b"yesterday's backup"


@pytest.mark.postgres
def test_postgres_store_is_sent_to_its_own_tools(tmp_path: Path, postgres_admin_url: str) -> None:
    url = create_database(postgres_admin_url)
    result = runner.invoke(app, ["db", "backup", str(tmp_path / "x.db"), "--db", url])
    assert result.exit_code == EXIT_USAGE
    assert "pg_dump" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_copy_failing_its_check_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that does not pass ``quick_check`` (a disk error while writing it) gets no name
    and leaves no temporary file; the command fails (exit 1) and says why."""
    from medsleep.store import backup

    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert runner.invoke(app, ["ingest", str(SAMPLE), "--db", url, "-q"]).exit_code == EXIT_OK
    monkeypatch.setattr(backup, "_quick_check", lambda path: ["page 7: btreeInitPage() error"])
    out = tmp_path / "copies"
    out.mkdir()
    result = runner.invoke(app, ["db", "backup", str(out / "b.db"), "--db", url])
    assert result.exit_code == EXIT_FAILURE
    assert "failed its check" in result.stderr
    assert list(out.iterdir()) == []
