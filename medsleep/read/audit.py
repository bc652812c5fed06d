"""The audit log as the dashboard reads it: newest events, and the whole chain verified."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

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


def recent_audit(engine: Engine, limit: int = 200, action_prefix: str = "") -> pd.DataFrame:
    """The newest audit events (optionally of actions starting with ``action_prefix``)."""
    query = select(_audit).order_by(_audit.c.seq.desc()).limit(limit)
    if action_prefix:
        query = query.where(_audit.c.action.startswith(action_prefix))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame([event_record(r) for r in rows], columns=list(AUDIT_COLUMNS))


def audit_chain_status(engine: Engine) -> ChainStatus:
    """Walk the whole audit chain (``ok``, ``events``, ``broken_at``, ``problem``)."""
    with engine.connect() as conn:
        return verify_chain(conn)
