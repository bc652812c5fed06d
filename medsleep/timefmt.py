"""Epoch-millisecond times to and from ISO-8601, the one place that converts them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

# The times medsleep accepts for a reading: 1900-01-01 (inclusive) to 2200-01-01 (exclusive),
# UTC. Every later step can represent them with room to spare: a bucket end, a day in any time
# zone, Python datetimes (years 1-9999) and pandas/numpy nanosecond timestamps (1677-2262),
# which the dashboard uses.
EARLIEST_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z
LATEST_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z


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
