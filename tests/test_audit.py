"""The audit chain verifies when intact and names the first broken event when not."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select, update

from medsleep.audit import append_event, verify_chain
from medsleep.store.models import AuditEvent

T = AuditEvent.__table__  # type: ignore[attr-defined]


def _chain(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        for i in range(n):
            append_event(conn, actor="test", action="thing", details={"i": i}, at_ms=1000 + i)


def test_intact_chain_verifies(engine: Engine) -> None:
    _chain(engine, 5)
    with engine.connect() as conn:
        status = verify_chain(conn)
    assert (status.ok, status.events, status.broken_at) == (True, 5, None)


def test_modified_row_is_found(engine: Engine) -> None:
    _chain(engine, 5)
    with engine.begin() as conn:
        conn.execute(update(T).where(T.c.seq == 3).values(details_json='{"i":99}'))
        status = verify_chain(conn)
    assert (status.ok, status.broken_at) == (False, 3)


def test_deleted_row_is_found(engine: Engine) -> None:
    _chain(engine, 5)
    with engine.begin() as conn:
        conn.execute(delete(T).where(T.c.seq == 2))
        status = verify_chain(conn)
    assert (status.ok, status.broken_at) == (False, 2)


def test_row_inserted_out_of_chain_is_found(engine: Engine) -> None:
    _chain(engine, 3)
    with engine.begin() as conn:
        last = conn.execute(select(T).where(T.c.seq == 3)).one()._mapping
        conn.execute(insert(T).values({**last, "seq": 4, "prev_hash": "f" * 64}))
        status = verify_chain(conn)
    assert (status.ok, status.broken_at) == (False, 4)


def test_ingest_appends_to_the_chain(engine: Engine, tmp_path: object) -> None:
    from pathlib import Path

    from medsleep.ingest import ingest_paths
    from tests.helpers import observation, write_ndjson

    path = write_ndjson(Path(str(tmp_path)) / "x.ndjson", [observation("a")])
    ingest_paths(engine, [str(path)])
    with engine.connect() as conn:
        events = conn.execute(select(T.c.action, T.c.details_json)).all()
        assert verify_chain(conn).ok
    assert [e.action for e in events] == ["ingest.done"]
    assert '"stored":1' in events[0].details_json


def test_concurrent_appenders_never_collide_or_fork(engine: Engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def append(i: int) -> int:
        with engine.begin() as conn:
            conn.execute(
                insert(T.metadata.tables["legal_hold"]).values(
                    patient=f"p{i}", reason="r", created_ms=i, created_by="t"
                )
            )
            return append_event(conn, actor="t", action="hold.add", details={"i": i}, at_ms=i)

    with ThreadPoolExecutor(max_workers=8) as pool:
        seqs = list(pool.map(append, range(40)))
    assert sorted(seqs) == list(range(1, 41))
    with engine.connect() as conn:
        assert verify_chain(conn).ok


def test_cut_off_newest_events_are_caught_against_a_recorded_head(engine: Engine) -> None:
    _chain(engine, 5)
    with engine.connect() as conn:
        head = conn.execute(select(T.c.seq, T.c.hash).where(T.c.seq == 5)).one()
    with engine.begin() as conn:
        conn.execute(delete(T).where(T.c.seq >= 4))
        assert verify_chain(conn).ok  # a shorter chain is still a valid chain...
        status = verify_chain(conn, (head.seq, head.hash))
    assert (status.ok, status.broken_at) == (False, 4)  # ...but not the one recorded


def test_cli_audit_verify_head(tmp_path: object) -> None:
    from typer.testing import CliRunner

    from medsleep.cli import app
    from medsleep.store.engine import open_store

    url = f"sqlite:///{tmp_path}/a.db"
    engine = open_store(url)
    _chain(engine, 3)
    with engine.connect() as conn:
        head = conn.execute(select(T.c.seq, T.c.hash).where(T.c.seq == 3)).one()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--db", url, "--head", f"3:{head.hash}"])
    assert ok.exit_code == 0
    wrong = runner.invoke(app, ["audit", "verify", "--db", url, "--head", f"3:{'0' * 64}"])
    assert wrong.exit_code == 5
