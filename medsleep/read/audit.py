"""The audit log as the dashboard reads it: newest events, and the whole chain verified."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from medsleep.audit import ChainStatus, verify_chain
from medsleep.store.tables import (
    AUDIT_EVENT,
)

_audit = AUDIT_EVENT


AUDIT_COLUMNS = ("seq", "at_ms", "actor", "action", "details", "hash")


def event_record(event: Any) -> dict[str, Any]:
    return {
        "seq": int(event.seq),
        "at_ms": int(event.at_ms),
        "actor": event.actor,
        "action": event.action,
        "details": event.details_json,
        "hash": event.hash,
    }


def recent_audit(
    engine: Engine,
    limit: int = 200,
    action_prefix: str = "",
    *,
    actor: str = "",
    text: str = "",
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> pd.DataFrame:
    """The newest audit events, optionally only those whose action starts with
    ``action_prefix``, by ``actor``, whose details contain ``text`` (a patient id, a file
    name; any case), in ``[since_ms, until_ms)``."""
    a = _audit.c
    query = select(_audit).order_by(a.seq.desc()).limit(limit)
    if action_prefix:
        query = query.where(a.action.startswith(action_prefix))
    if actor:
        query = query.where(a.actor == actor)
    if text:
        query = query.where(func.lower(a.details_json).contains(text.lower()))
    if since_ms is not None:
        query = query.where(a.at_ms >= since_ms)
    if until_ms is not None:
        query = query.where(a.at_ms < until_ms)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame([event_record(r) for r in rows], columns=list(AUDIT_COLUMNS))


def audit_actions(engine: Engine) -> list[str]:
    """Every action the audit log holds, sorted (the filter's choices)."""
    with engine.connect() as conn:
        return sorted(str(a) for a in conn.execute(select(_audit.c.action).distinct()).scalars())


def audit_chain_status(engine: Engine) -> ChainStatus:
    """Walk the whole audit chain (``ok``, ``events``, ``broken_at``, ``problem``)."""
    with engine.connect() as conn:
        return verify_chain(conn)
