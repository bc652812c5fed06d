"""Clinical review marks: "I have looked at this patient's night (or this episode)", with an
optional comment, audited and shown to the next viewer; and the record of who viewed which
patient. The only writes the read model makes, each in one transaction with its audit event."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import Connection

from medsleep.audit import append_event, append_with_retry, audited_transaction
from medsleep.errors import MedsleepError
from medsleep.store.tables import REVIEW

_review = REVIEW
REVIEW_ACTION, VIEW_ACTION = "review.add", "dashboard.view_patient"
MAX_COMMENT = 2_000


class ReviewError(MedsleepError):
    """A review mark that cannot be recorded as asked (empty reviewer, comment too long)."""


@dataclass(frozen=True)
class ReviewMark:
    """One review: ``episode_start_ms`` None means the whole night."""

    patient: str
    night_start_ms: int
    night_end_ms: int
    episode_start_ms: int | None
    reviewer: str
    comment: str
    created_ms: int


def add_review(
    engine: Engine,
    *,
    patient: str,
    night: tuple[int, int],
    by: str,
    now_ms: int,
    episode_start_ms: int | None = None,
    comment: str = "",
) -> int:
    """Record that ``by`` reviewed ``patient``'s night ``[start, end)`` (or the episode that
    starts at ``episode_start_ms``); returns the audit seq of the ``review.add`` event."""
    comment = comment.strip()
    if not by:
        raise ReviewError("a review needs the reviewer's name")
    if len(comment) > MAX_COMMENT:
        raise ReviewError(f"a review comment has at most {MAX_COMMENT} characters")
    row = {
        "patient": patient,
        "night_start_ms": night[0],
        "night_end_ms": night[1],
        "episode_start_ms": episode_start_ms,
        "reviewer": by,
        "comment": comment,
        "created_ms": now_ms,
    }
    details: dict[str, Any] = {
        k: v for k, v in row.items() if k not in ("reviewer", "created_ms") and v not in (None, "")
    }

    def write(conn: Connection) -> int:
        conn.execute(insert(_review).values(**row))
        return append_event(conn, actor=by, action=REVIEW_ACTION, details=details, at_ms=now_ms)

    return audited_transaction(engine, write)


def reviews_in(conn: Connection, patients: Iterable[str], night_start_ms: int) -> list[ReviewMark]:
    """The review marks of these patients for the night starting at ``night_start_ms``,
    oldest first."""
    r = _review.c
    rows = conn.execute(
        select(_review)
        .where(r.patient.in_(list(patients)), r.night_start_ms == night_start_ms)
        .order_by(r.created_ms, r.id)
    ).all()
    return [
        ReviewMark(
            patient=row.patient,
            night_start_ms=int(row.night_start_ms),
            night_end_ms=int(row.night_end_ms),
            episode_start_ms=None if row.episode_start_ms is None else int(row.episode_start_ms),
            reviewer=row.reviewer,
            comment=row.comment,
            created_ms=int(row.created_ms),
        )
        for row in rows
    ]


def record_patient_view(
    engine: Engine, *, patient: str, by: str, now_ms: int, since_ms: int, until_ms: int
) -> int:
    """Audit that ``by`` opened ``patient``'s readings for ``[since_ms, until_ms)``."""
    details = {"patient": patient, "since_ms": since_ms, "until_ms": until_ms}
    return append_with_retry(engine, actor=by, action=VIEW_ACTION, details=details, at_ms=now_ms)
