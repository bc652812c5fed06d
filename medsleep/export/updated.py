"""``_since`` as the Bulk Data IG means it: resources medsleep stored (or made) at or after an
instant — their ``meta.lastUpdated`` — not readings measured after it.

A reading's lastUpdated is its ingest batch's; a summary's (and its Provenance's) is its
consolidation run's; an AuditEvent's is its own time. A batch or run counts as updated since
``t`` unless it *finished* before ``t``: one still writing at ``t`` may commit rows after it,
and a client that exports with ``_since`` = the previous manifest's ``transactionTime`` must
not miss them (seeing a resource twice is harmless; missing one is not).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, Table, or_, select

from medsleep.store.tables import INGEST_BATCH, RUN


def _open_since(table: Table, since_ms: int) -> ColumnElement[bool]:
    finished = table.c.finished_ms
    return or_(finished.is_(None), finished >= since_ms)


def stored_since(batch_id: ColumnElement[int], since_ms: int) -> ColumnElement[bool]:
    """Rows whose ingest batch (``batch_id``) had not finished before ``since_ms``."""
    batches = select(INGEST_BATCH.c.id).where(_open_since(INGEST_BATCH, since_ms))
    return batch_id.in_(batches.scalar_subquery())


def made_since(run_id: ColumnElement[int], since_ms: int) -> ColumnElement[bool]:
    """Rows whose consolidation run (``run_id``) had not finished before ``since_ms``."""
    runs = select(RUN.c.id).where(_open_since(RUN, since_ms))
    return run_id.in_(runs.scalar_subquery())


def batches_stored_since(conn: Connection, since_ms: int) -> set[int]:
    """Ids of the ingest batches that had not finished before ``since_ms`` (few: one a call),
    for archived readings, which are filtered after they are read from their file."""
    query = select(INGEST_BATCH.c.id).where(_open_since(INGEST_BATCH, since_ms))
    return {int(batch) for batch in conn.execute(query).scalars()}
