"""The append-only, hash-chained audit log.

Each event's hash is sha256 over a canonical JSON form of (seq, time, actor, action, details)
and the previous event's hash. Editing, deleting or inserting a row anywhere breaks the chain
from that row on, which ``verify_chain`` reports.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from medsleep.store.models import AuditEvent
from medsleep.store.tables import AUDIT_EVENT

GENESIS = "0" * 64
AUDIT_LOCK_KEY = 0x6D656473_61756474  # "medsaudt": serialises appends on PostgreSQL
_table = AUDIT_EVENT
APPEND_ATTEMPTS = 8  # a busy night: the ingest, the run, an export and logins all appending
T = TypeVar("T")


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    events: int
    broken_at: int | None = None
    problem: str = ""


def canonical(seq: int, at_ms: int, actor: str, action: str, details_json: str) -> bytes:
    body = {"seq": seq, "at_ms": at_ms, "actor": actor, "action": action, "details": details_json}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev_hash: str, seq: int, at_ms: int, actor: str, action: str, details: str) -> str:
    return hashlib.sha256(
        prev_hash.encode() + canonical(seq, at_ms, actor, action, details)
    ).hexdigest()


def append_event(
    conn: Connection, *, actor: str, action: str, details: dict[str, Any], at_ms: int
) -> int:
    """Append one event inside the caller's transaction and return its seq.

    On PostgreSQL appenders take turns on a transaction-scoped advisory lock (two transactions
    would otherwise read the same last ``seq``); SQLite callers already hold the write lock,
    since they write before they append. The primary key on ``seq`` remains the backstop: two
    writers can collide, never fork the chain.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    last = conn.execute(
        select(_table.c.seq, _table.c.hash).order_by(_table.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    details_json = json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
    conn.execute(
        insert(_table).values(
            seq=seq,
            at_ms=at_ms,
            actor=actor,
            action=action,
            details_json=details_json,
            prev_hash=prev,
            hash=chain_hash(prev, seq, at_ms, actor, action, details_json),
        )
    )
    return int(seq)


def audited_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` (which appends to the audit chain) in its own transaction, again on the new
    chain head when a concurrent appender took our ``seq`` (its primary key): the transaction
    rolled back whole, so trying again changes nothing twice."""
    for attempt in range(APPEND_ATTEMPTS):
        try:
            with engine.begin() as conn:
                return work(conn)
        except IntegrityError:
            if attempt == APPEND_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


def append_with_retry(
    engine: Engine, *, actor: str, action: str, details: dict[str, Any], at_ms: int
) -> int:
    """Append one event in its own transaction (see :func:`audited_transaction`)."""
    return audited_transaction(
        engine,
        lambda conn: append_event(conn, actor=actor, action=action, details=details, at_ms=at_ms),
    )


def iter_events(conn: Connection, since_ms: int | None = None) -> Iterator[AuditEvent]:
    query = select(_table).order_by(_table.c.seq)
    if since_ms is not None:
        query = query.where(_table.c.at_ms >= since_ms)
    for row in conn.execute(query):
        yield AuditEvent.model_validate(row._mapping)


def verify_chain(conn: Connection, head: tuple[int, str] | None = None) -> ChainStatus:
    """Walk the chain from the first event; report the first event that does not verify.

    ``head`` is a (seq, hash) recorded earlier (an export manifest's ``auditChainHead``): the
    chain must still hold that event unchanged, which catches the newest events cut off.
    """
    prev, expected_seq, count = GENESIS, 1, 0
    for event in iter_events(conn):
        count += 1
        if event.seq != expected_seq:
            return ChainStatus(False, count, expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != prev:
            return ChainStatus(False, count, event.seq, "previous-hash link does not match")
        recomputed = chain_hash(
            prev, event.seq, event.at_ms, event.actor, event.action, event.details_json
        )
        if recomputed != event.hash:
            return ChainStatus(False, count, event.seq, "content does not match its hash")
        if head is not None and event.seq == head[0] and event.hash != head[1]:
            return ChainStatus(False, count, event.seq, "differs from the recorded chain head")
        prev, expected_seq = event.hash, expected_seq + 1
    if head is not None and expected_seq <= head[0]:
        return ChainStatus(False, count, expected_seq, f"chain ends before recorded head {head[0]}")
    return ChainStatus(True, count)


def count_events(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(_table)).scalar_one())
