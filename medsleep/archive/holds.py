"""Legal holds: patients whose raw readings must never be collapsed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from medsleep.audit import append_event
from medsleep.errors import MedsleepError
from medsleep.fhir.datatypes import DatatypeError, check_id
from medsleep.store.handle import Store
from medsleep.store.tables import LEGAL_HOLD
from medsleep.timefmt import iso

_hold = LEGAL_HOLD


class HoldError(MedsleepError):
    """A hold that already exists, or none to release."""


# A hold is active until it is released: the one definition every reader of holds uses.
ACTIVE = _hold.c.released_ms.is_(None)


def is_held(conn: Connection, patient: str) -> bool:
    query = select(_hold.c.id).where(_hold.c.patient == patient, ACTIVE)
    return conn.execute(query).first() is not None


def held_patients(conn: Connection) -> set[str]:
    """Patients on an active hold."""
    return {row[0] for row in conn.execute(select(_hold.c.patient).where(ACTIVE))}


def add_hold(store: Store, patient: str, reason: str) -> None:
    """Put ``patient`` on hold (as ``store.actor``): no run collapses or purges their readings."""
    by, now_ms = store.actor, store.now_ms()
    try:
        check_id(patient, "patient")
    except DatatypeError as exc:
        raise HoldError(f"{exc} (a patient id as stored, e.g. icu-0001)") from exc
    with store.engine.begin() as conn:
        if is_held(conn, patient):
            raise HoldError(f"patient {patient} is already on hold")
        conn.execute(
            insert(_hold).values(patient=patient, reason=reason, created_ms=now_ms, created_by=by)
        )
        append_event(
            conn,
            actor=by,
            action="hold.add",
            details={"patient": patient, "reason": reason},
            at_ms=now_ms,
        )


def release_hold(store: Store, patient: str) -> None:
    by, now_ms = store.actor, store.now_ms()
    with store.engine.begin() as conn:
        result = conn.execute(
            update(_hold).where(_hold.c.patient == patient, ACTIVE).values(released_ms=now_ms)
        )
        if result.rowcount == 0:
            raise HoldError(f"patient {patient} has no active hold")
        append_event(
            conn, actor=by, action="hold.release", details={"patient": patient}, at_ms=now_ms
        )


def list_holds(engine: Engine) -> list[dict[str, Any]]:
    query = select(_hold).where(ACTIVE).order_by(_hold.c.patient)
    with engine.connect() as conn:
        return [
            {
                "patient": r.patient,
                "since": iso(r.created_ms),
                "by": r.created_by,
                "reason": r.reason,
            }
            for r in conn.execute(query)
        ]
