"""Typed handles on the tables, the states a row can be in, and the reading's one column order.

The tables are SQLAlchemy Core ``Table`` objects from ``store.core_tables``, generated from the
SQLModel models (``store.models``, the one declaration of the schema): the library's queries are
Core, and loading the models costs SQLModel, the ORM and ~0.1 s of every process's start-up.
States are ``StrEnum``s: they compare equal to the strings stored in the database and bind as
text on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from medsleep.store.core_tables import (
    ARCHIVE_FILE,
    AUDIT_EVENT,
    BODY_DICTIONARY,
    EPISODE,
    INGEST_BATCH,
    LEGAL_HOLD,
    METADATA,
    PATIENT,
    PREPARED_DIGEST,
    QUARANTINE,
    READING,
    RESOURCE_ARCHIVED,
    RESOURCE_SEEN,
    RETENTION,
    REVIEW,
    RUN,
    SEARCH_TOKEN,
    SUMMARY,
)

__all__ = [
    "ARCHIVE_FILE",
    "AUDIT_EVENT",
    "BODY_DICTIONARY",
    "EPISODE",
    "INGEST_BATCH",
    "LEGAL_HOLD",
    "METADATA",
    "PATIENT",
    "PREPARED_DIGEST",
    "QUARANTINE",
    "READING",
    "RESOURCE_ARCHIVED",
    "RESOURCE_SEEN",
    "RETENTION",
    "REVIEW",
    "RUN",
    "SEARCH_TOKEN",
    "SUMMARY",
    "HOT_STATES",
    "READING_ADDED_COLUMNS",
    "READING_COLUMNS",
    "READING_ROW",
    "ArchiveState",
    "BatchStatus",
    "ReadingState",
    "RunStatus",
    "SummaryState",
]

# The reading's columns in table order: the ingest writer's rows, the archive's Parquet files
# and restore's inserts all use this one order. The resource's text is not one of them: it is
# kept once per resource (``resource_seen.body``); archive files carry it as ``resource_json``.
READING_COLUMNS: Final = tuple(c.name for c in READING.c)
# A reading as the parsers emit it: the store's row less id, batch_id and state, in the order
# the fast path builds its tuples (the writer adds the batch and state).
READING_ROW: Final = (
    "patient",
    "code_system",
    "code",
    "effective_ms",
    "value",
    "unit",
    "orig_value",
    "orig_unit",
    "resource_key",
    "resource_version",
    "part",
    "status",
    "interpretation",
    "reference_range",
)
# Columns added after the first archive files were written, with the value a reading written
# before them has (an old archive file lacks them; reading it fills them in).
READING_ADDED_COLUMNS: Final = {"interpretation": "", "reference_range": ""}
assert set(READING_ROW) == set(READING_COLUMNS) - {"id", "batch_id", "state"}


class ReadingState(StrEnum):
    RAW = "raw"  # in the hot store, not yet judged
    RETAINED = "retained"  # kept by a consolidation run, with its reasons
    SUPERSEDED = "superseded"  # a later version of its resource arrived
    RETRACTED = "retracted"  # its resource was entered-in-error or deleted


# Current data: what the hot store serves, exports and the views show.
HOT_STATES: Final = (ReadingState.RAW, ReadingState.RETAINED)


class SummaryState(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"  # re-collapsed with late data, or restored


class ArchiveState(StrEnum):
    ACTIVE = "active"
    RESTORED = "restored"
    PURGED = "purged"  # deleted under the retention policy; the record stays


class RunStatus(StrEnum):
    RUNNING = "running"
    COMMITTED = "committed"
    PARTIAL = "partial"  # the deadline came first: the rest waits for the next run
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the process ended mid-run; found by the next run


class BatchStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the input stopped short or the batch raised
    INTERRUPTED = "interrupted"  # its process was killed; found by a later ingest or run
