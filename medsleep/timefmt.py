"""Epoch-millisecond times to and from ISO-8601, the one place that converts them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def iso(ms: int) -> str:
    """ISO-8601 UTC with a Z, millisecond precision when needed."""
    moment = _EPOCH + ms * _MILLISECOND
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MILLISECOND


def parse_iso_ms(text: str) -> int:
    """Epoch ms of an ISO date or date-time (UTC unless a zone is given)."""
    return to_ms(datetime.fromisoformat(text))


def ms_to_datetime(ms: int) -> datetime:
    return _EPOCH + ms * _MILLISECOND


def wall_clock_ms() -> int:
    """Now, in epoch milliseconds (the default clock; tests pass their own)."""
    return time.time_ns() // 1_000_000
