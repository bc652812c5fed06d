"""Whether a patient or a run named in a request is one this store has ever held, so that a
typo (``--patient nobody``) is an error instead of an empty answer that looks like a result."""

from __future__ import annotations

from sqlalchemy import Engine, select

from medsleep.errors import ScopeError
from medsleep.store.tables import ARCHIVE_FILE, LEGAL_HOLD, READING, RUN, SUMMARY

# Where a patient can be found: hot readings (any state), summaries, archive files, holds (a
# patient can be held before any reading arrives).
_PATIENT_TABLES = (READING, SUMMARY, ARCHIVE_FILE, LEGAL_HOLD)


def known_patient(engine: Engine, patient: str) -> bool:
    with engine.connect() as conn:
        return any(
            conn.execute(select(t.c.patient).where(t.c.patient == patient).limit(1)).first()
            for t in _PATIENT_TABLES
        )


def known_run(engine: Engine, run_id: int) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(RUN.c.id).where(RUN.c.id == run_id)).first() is not None


def require_known(engine: Engine, *, patient: str | None = None, run_id: int | None = None) -> None:
    """Raise ScopeError naming the patient or run (when given) this store has never held."""
    if run_id is not None and not known_run(engine, run_id):
        raise ScopeError(f"no consolidation run {run_id} in this store")
    if patient is not None and not known_patient(engine, patient):
        raise ScopeError(f"no patient {patient!r} in this store")
