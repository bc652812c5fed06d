"""``medsleep sleep``: wait for quiet hours and a backlog, consolidate until they end, repeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from medsleep.consolidate.executors import ExecutorSpec
from medsleep.consolidate.job import (
    ConsolidationReport,
    backlog_size,
    consolidate,
    default_until_ms,
)
from medsleep.errors import LockHeldError
from medsleep.policy import Policy
from medsleep.store.handle import Store
from medsleep.timefmt import to_ms

log = logging.getLogger(__name__)


def quiet_window(policy: Policy, now: datetime) -> tuple[datetime, datetime]:
    """The current quiet-hours window if ``now`` is inside one, else the next one.

    Windows may cross midnight (e.g. 22:00-05:00).
    """
    zone = ZoneInfo(policy.timezone)
    local = now.astimezone(zone)
    for day in (local.date() - timedelta(days=1), local.date(), local.date() + timedelta(days=1)):
        start = datetime.combine(day, policy.quiet_start, zone)
        end = datetime.combine(day, policy.quiet_end, zone)
        if end <= start:
            end += timedelta(days=1)
        if local < end:
            return start, end
    raise AssertionError("unreachable: some window ends after now")


def sleep_loop(
    store: Store,
    policy: Policy,
    *,
    executor: ExecutorSpec,
    once: bool = False,
    pause: Callable[[float], None] = time.sleep,
) -> Iterator[ConsolidationReport]:
    """Consolidate inside every quiet-hours window, forever (or once with ``once``)."""
    clock = store.clock
    while True:
        now = datetime.fromtimestamp(clock() / 1000).astimezone()
        start, end = quiet_window(policy, now)
        if now < start:
            wait = (start - now).total_seconds()
            log.info("sleeping %.0f s until quiet hours at %s", wait, start.isoformat())
            pause(wait)
            continue
        until = default_until_ms(policy, clock())
        try:
            if backlog_size(store.engine, until) < policy.min_backlog:
                log.info("backlog below %d readings; nothing to do this window", policy.min_backlog)
                if once:
                    return
                pause(max(1.0, (end - now).total_seconds()))
                continue
            report = consolidate(
                store, policy, until_ms=until, deadline_ms=to_ms(end), executor=executor
            )
            yield report
        except LockHeldError:
            log.info("another consolidation holds the lock; waiting for the next window")
        if once:
            return
        # Wake again after this window (a late backlog waits for the next quiet hours).
        pause(max(1.0, (end - datetime.fromtimestamp(clock() / 1000).astimezone()).total_seconds()))
