"""The checks made before anything is forgotten: the last ``consolidate --dry-run`` and the
last ``medsleep evaluate`` recorded on a store, for the dashboard's compliance page.

Both are kept as audit events (their details are the report): the chain makes them
tamper-evident like every other compliance record, and no table or migration is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from medsleep.store.tables import AUDIT_EVENT

# The actions consolidate.dry_run and evaluate.run append (tests hold them equal).
DRY_RUN_ACTION = "consolidate.dry-run"
EVALUATION_ACTION = "evaluate.report"


@dataclass(frozen=True)
class RecordedCheck:
    """One recorded report: when, by whom, and the report itself (its ``--json`` object)."""

    seq: int
    at_ms: int
    actor: str
    report: dict[str, Any]


def last_check(engine: Engine, action: str) -> RecordedCheck | None:
    """The newest audit event of ``action`` with its report, or None."""
    a = AUDIT_EVENT.c
    query = select(AUDIT_EVENT).where(a.action == action).order_by(a.seq.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return RecordedCheck(int(row.seq), int(row.at_ms), str(row.actor), json.loads(row.details_json))


def last_dry_run(engine: Engine) -> RecordedCheck | None:
    return last_check(engine, DRY_RUN_ACTION)


def last_evaluation(engine: Engine) -> RecordedCheck | None:
    return last_check(engine, EVALUATION_ACTION)
