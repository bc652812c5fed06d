"""Ingest batches whose process was killed: found by the next ingest, marked ``interrupted``.

A batch records its owner (``host:pid``). A batch still ``running`` whose owner is on this host
and no longer alive was killed (SIGKILL, OOM, power): what it committed stands (each chunk is
its own transaction), the rest was never written. A batch of another host, or of a live pid,
is left alone: only its own host can tell it is dead.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

from sqlalchemy import Connection, Engine, select, update

from medsleep.audit import append_event, audited_transaction
from medsleep.store.tables import INGEST_BATCH, BatchStatus

log = logging.getLogger(__name__)
_batch = INGEST_BATCH


def this_owner() -> str:
    """``host:pid`` of this process, as recorded on the batches it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _dead_here(owner: str | None, host: str) -> bool:
    if not owner:
        return False
    owner_host, _, pid = owner.rpartition(":")
    return owner_host == host and pid.isdigit() and not _alive(int(pid))


def close_interrupted_batches(engine: Engine, clock: Callable[[], int], actor: str) -> list[int]:
    """Mark this host's running batches of dead processes ``interrupted``, one audit event
    each; returns their ids."""
    host = socket.gethostname()
    with engine.connect() as conn:
        running = conn.execute(
            select(_batch.c.id, _batch.c.owner).where(_batch.c.status == BatchStatus.RUNNING)
        ).all()
    stale = [int(batch_id) for batch_id, owner in running if _dead_here(owner, host)]
    for batch_id in stale:

        def record(conn: Connection, batch_id: int = batch_id) -> None:
            changed = conn.execute(
                update(_batch)
                .where(_batch.c.id == batch_id, _batch.c.status == BatchStatus.RUNNING)
                .values(status=BatchStatus.INTERRUPTED, finished_ms=clock())
            ).rowcount
            if changed:  # another process may have closed it first
                append_event(
                    conn,
                    actor=actor,
                    action="ingest.interrupted",
                    details={"batch_id": batch_id, "error": "process ended mid-batch"},
                    at_ms=clock(),
                )

        audited_transaction(engine, record)
        log.info("ingest batch %d was interrupted (its process is gone)", batch_id)
    return stale
