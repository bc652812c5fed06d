"""Typed handles on the tables, the states a row can be in, and the reading's one column order.

SQLModel declares ``__table__`` on table models at run time only, so every module that wrote
Core queries used to cast it (with a ``type: ignore``) for itself; they take their handle here.
States are ``StrEnum``s: they compare equal to the strings stored in the database and bind as
text on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from sqlalchemy import Table
from sqlmodel import SQLModel

from medsleep.store.models import (
    ArchiveFileRecord,
    AuditEvent,
    BodyDictionary,
    Episode,
    IngestBatch,
    LegalHold,
    PatientRecord,
    PreparedDigest,
    Quarantine,
    Reading,
    ResourceArchived,
    ResourceSeen,
    Retention,
    Review,
    Run,
    SearchToken,
    Summary,
)


def table_of(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel's metaclass
    assert isinstance(table, Table)
    return table


READING: Final = table_of(Reading)
RESOURCE_SEEN: Final = table_of(ResourceSeen)
RESOURCE_ARCHIVED: Final = table_of(ResourceArchived)
BODY_DICTIONARY: Final = table_of(BodyDictionary)
SEARCH_TOKEN: Final = table_of(SearchToken)
INGEST_BATCH: Final = table_of(IngestBatch)
QUARANTINE: Final = table_of(Quarantine)
AUDIT_EVENT: Final = table_of(AuditEvent)
RUN: Final = table_of(Run)
SUMMARY: Final = table_of(Summary)
RETENTION: Final = table_of(Retention)
EPISODE: Final = table_of(Episode)
ARCHIVE_FILE: Final = table_of(ArchiveFileRecord)
LEGAL_HOLD: Final = table_of(LegalHold)
REVIEW: Final = table_of(Review)
PATIENT: Final = table_of(PatientRecord)
PREPARED_DIGEST: Final = table_of(PreparedDigest)

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
