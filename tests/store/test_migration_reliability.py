"""Revision 0004 (keyed audit hashes, batch owners) upgrades an old store in place."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import select, text

from medsleep.audit import GENESIS, append_event, chain_hash, keyed_engine, verify_chain
from medsleep.ingest import ingest_paths
from medsleep.store.engine import (
    _alembic_config,
    create_store_engine,
    current_revision,
    head_revision,
    open_store,
)
from medsleep.store.tables import INGEST_BATCH
from tests.helpers import observation, write_ndjson


def test_a_store_at_0002_with_history_upgrades_and_keeps_verifying(
    db_url: str, tmp_path: Path
) -> None:
    old = create_store_engine(db_url)
    with old.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002")
    with old.begin() as conn:
        for i in range(3):  # the 0002 table has no key_id column: raw SQL, as 0002 wrote it
            last = conn.exec_driver_sql(
                "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1"
            ).first()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            digest = chain_hash(prev, seq, 1000 + i, "old", "thing", "{}")
            conn.exec_driver_sql(
                "INSERT INTO audit_event (seq, at_ms, actor, action, details_json, prev_hash, "
                f"hash) VALUES ({seq}, {1000 + i}, 'old', 'thing', '{{}}', '{prev}', '{digest}')"
            )
    old.dispose()
    engine = open_store(db_url)
    key = b"x" * 32
    with keyed_engine(engine, key).begin() as conn:
        append_event(conn, actor="new", action="thing", details={}, at_ms=2000)
    with engine.connect() as conn:
        status = verify_chain(conn, key=key)
    assert (status.ok, status.events, status.keyed) == (True, 4, 1)
    report = ingest_paths(engine, [str(write_ndjson(tmp_path / "a.ndjson", [observation()]))])
    assert report.stored == 1
    with engine.connect() as conn:
        owner = conn.execute(select(INGEST_BATCH.c.owner)).scalar_one()
    assert owner.rsplit(":", 1)[1].isdigit()
    engine.dispose()


def test_a_store_that_recorded_two_since_chained_revisions_opens_and_upgrades(
    db_url: str,
) -> None:
    """0006 and 0007 were once side by side on 0005; a store upgraded then records both."""
    old = create_store_engine(db_url)
    with old.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0006')"))
    old.dispose()
    engine = open_store(db_url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        recorded = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert recorded == [head_revision()]
    engine.dispose()
