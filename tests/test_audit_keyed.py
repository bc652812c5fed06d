"""Audit tamperings the adversarial run of issue 12 found undetected or mis-reported: rows that
cannot be read as written, forged appends, cut-off heads; keyed hashes and anchored heads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, select
from typer.testing import CliRunner

from medsleep.audit import (
    GENESIS,
    anchor_record,
    append_anchor,
    append_event,
    chain_hash,
    keyed_engine,
    read_anchors,
    verify_chain,
)
from medsleep.cli import app
from medsleep.errors import AuditChainBrokenError
from medsleep.store.engine import open_store
from medsleep.store.models import AuditEvent

T = AuditEvent.__table__  # type: ignore[attr-defined]
KEY = b"k" * 32
runner = CliRunner()


def _chain(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        for i in range(n):
            append_event(conn, actor="test", action="thing", details={"i": i}, at_ms=1000 + i)


def _sqlite_store(tmp_path: Path, n: int = 5) -> tuple[str, Path]:
    path = tmp_path / "m.db"
    engine = open_store(f"sqlite:///{path}")
    _chain(engine, n)
    engine.dispose()
    return f"sqlite:///{path}", path


def _drop_not_null(path: Path) -> None:
    """Rebuild audit_event without constraints, as a tamperer with the file can."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE t2 AS SELECT * FROM audit_event; DROP TABLE audit_event; "
            "ALTER TABLE t2 RENAME TO audit_event;"
        )


@pytest.mark.parametrize(
    ("tamper", "entry"),
    [
        ("UPDATE audit_event SET at_ms = 'yesterday' WHERE seq = 3", 3),
        ("UPDATE audit_event SET at_ms = at_ms + 0.5 WHERE seq = 3", 3),
        ("UPDATE audit_event SET seq = 3.5 WHERE seq = 3", 3),
        ("UPDATE audit_event SET details_json = CAST(X'7B22FF227D' AS TEXT) WHERE seq = 2", 2),
        ("UPDATE audit_event SET actor = NULL WHERE seq = 4", 4),
        ("UPDATE audit_event SET hash = NULL WHERE seq = 4", 4),
        ("UPDATE audit_event SET actor = X'74657374' WHERE seq = 4", 4),  # a blob, not text
    ],
)
def test_rows_that_cannot_be_read_as_written_are_broken_at_their_entry(
    tmp_path: Path, tamper: str, entry: int
) -> None:
    url, path = _sqlite_store(tmp_path)
    _drop_not_null(path)
    with sqlite3.connect(path) as conn:
        conn.execute(tamper)
    result = runner.invoke(app, ["audit", "verify", "--db", url])
    assert result.exit_code == 5, result.output
    assert f"broken at entry {entry}" in result.stderr


def _forge_append(conn: object) -> None:
    """Append an event with a correctly computed sha256, as anyone with DB access can."""
    last = conn.execute(select(T).order_by(T.c.seq.desc()).limit(1)).one()  # type: ignore[attr-defined]
    seq, details = last.seq + 1, '{"forged":true}'
    digest = chain_hash(last.hash, seq, 5000, "test", "thing", details)
    conn.execute(  # type: ignore[attr-defined]
        insert(T).values(
            seq=seq,
            at_ms=5000,
            actor="test",
            action="thing",
            details_json=details,
            prev_hash=last.hash,
            hash=digest,
        )
    )


def test_unkeyed_chain_misses_a_forged_append_the_keyed_one_catches(engine: Engine) -> None:
    _chain(keyed_engine(engine, KEY), 4)
    with engine.begin() as conn:
        _forge_append(conn)
    with engine.connect() as conn:
        unkeyed = verify_chain(conn)
        keyed = verify_chain(conn, key=KEY)
    assert unkeyed.ok  # links hold; 4 HMACs could not be checked
    assert unkeyed.unchecked == 4
    assert (keyed.ok, keyed.broken_at) == (False, 5)
    assert "without the key" in keyed.problem


def test_keyed_chain_verifies_and_a_forged_hmac_or_wrong_key_is_caught(engine: Engine) -> None:
    _chain(engine, 2)  # history from before the key
    _chain(keyed_engine(engine, KEY), 3)
    with engine.connect() as conn:
        status = verify_chain(conn, key=KEY)
        wrong = verify_chain(conn, key=b"w" * 32)
    assert (status.ok, status.events, status.keyed) == (True, 5, 3)
    assert (wrong.ok, wrong.broken_at) == (False, 3)
    with engine.begin() as conn:
        conn.execute(T.update().where(T.c.seq == 4).values(details_json='{"i":99}'))
    with engine.connect() as conn:
        assert verify_chain(conn, key=KEY).broken_at == 4


def test_a_key_given_for_an_unkeyed_chain_fails(engine: Engine) -> None:
    _chain(engine, 3)
    with engine.connect() as conn:
        status = verify_chain(conn, key=KEY)
    assert not status.ok
    assert "unkeyed" in status.problem


def test_anchors_catch_cut_off_newest_events_and_forged_anchor_lines(
    engine: Engine, tmp_path: Path
) -> None:
    keyed = keyed_engine(engine, KEY)
    anchors = tmp_path / "anchors.log"
    for _ in range(2):
        _chain(keyed, 3)
        with engine.connect() as conn:
            last = conn.execute(select(T.c.seq, T.c.hash).order_by(T.c.seq.desc())).first()
        append_anchor(anchors, anchor_record((last[0], last[1]), KEY, 0))
    heads = read_anchors(anchors, KEY)
    assert [seq for seq, _ in heads] == [3, 6]
    with engine.begin() as conn:
        conn.execute(delete(T).where(T.c.seq >= 5))  # cut the newest: a valid shorter chain
    with engine.connect() as conn:
        assert verify_chain(conn, key=KEY).ok
        cut = verify_chain(conn, key=KEY, heads=heads)
    assert (cut.ok, cut.broken_at) == (False, 5)
    record = json.loads(anchors.read_text().splitlines()[1].partition("head ")[2])
    record["seq"] = 4  # a tamperer rewrites the anchor to match the cut chain
    anchors.write_text(anchors.read_text() + "medsleep audit head " + json.dumps(record) + "\n")
    with pytest.raises(AuditChainBrokenError, match="anchor line 3"):
        read_anchors(anchors, KEY)


def test_cli_keys_events_anchors_heads_and_verifies_with_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    key_file = tmp_path / "audit.key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")
    anchors = tmp_path / "anchors.log"
    monkeypatch.setenv("MEDSLEEP_AUDIT_KEY_FILE", str(key_file))
    monkeypatch.setenv("MEDSLEEP_AUDIT_ANCHOR", str(anchors))
    data = tmp_path / "a.ndjson"
    data.write_text("")
    for _ in range(2):
        assert runner.invoke(app, ["ingest", str(data), "--db", url]).exit_code == 0
    assert runner.invoke(app, ["query", "readings", "--db", url]).exit_code == 0  # no append
    lines = anchors.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[-1].partition("head ")[2])["seq"] == 2
    monkeypatch.delenv("MEDSLEEP_AUDIT_KEY_FILE")
    monkeypatch.delenv("MEDSLEEP_AUDIT_ANCHOR")
    unkeyed = runner.invoke(app, ["audit", "verify", "--db", url])
    assert unkeyed.exit_code == 0
    assert "unkeyed check" in unkeyed.stderr
    args = ["audit", "verify", "--db", url, "--key", str(key_file), "--anchor", str(anchors)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 with the key" in result.stderr
    engine = open_store(url)
    with engine.begin() as conn:
        _forge_append(conn)
    engine.dispose()
    assert runner.invoke(app, ["audit", "verify", "--db", url]).exit_code == 0  # unkeyed: missed
    forged = runner.invoke(app, args)
    assert forged.exit_code == 5
    assert "broken at entry 3" in forged.stderr


def test_genesis_is_the_first_link(engine: Engine) -> None:
    _chain(keyed_engine(engine, KEY), 1)
    with engine.connect() as conn:
        assert conn.execute(select(T.c.prev_hash)).scalar_one() == GENESIS
