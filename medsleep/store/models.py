"""The tables. Times are epoch milliseconds UTC (``*_ms``) so that bucketing is plain integer
arithmetic on every SQL dialect and the hot path never formats dates.

Data models (no ``table=True``) validate; table models do not (SQLModel's rule), so code that
builds rows from untrusted input validates with the data model or the FHIR layer first.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, Text
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer, "sqlite")

READING_STATES = ("raw", "retained", "superseded", "retracted")


class ReadingBase(SQLModel):
    patient: str
    code_system: str
    code: str
    effective_ms: int
    value: float
    unit: str
    orig_value: float
    orig_unit: str
    resource_key: str
    resource_version: str
    part: int
    status: str
    batch_id: int
    state: str = "raw"


class Reading(ReadingBase, table=True):
    """One numeric value of one FHIR Observation in the hot store."""

    __tablename__ = "reading"
    __table_args__ = (
        Index("ix_reading_series", "patient", "code", "effective_ms"),
        Index("ix_reading_resource", "resource_key"),
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    effective_ms: int = Field(sa_type=BigInteger)
    resource_json: str = Field(sa_type=Text)


class ResourceSeen(SQLModel, table=True):
    """Every resource version ever stored, so re-ingest is idempotent after archiving."""

    __tablename__ = "resource_seen"
    __table_args__ = {"sqlite_with_rowid": False}  # the key is the row: one B-tree, not two
    resource_key: str = Field(primary_key=True)
    resource_version: str = Field(primary_key=True)
    batch_id: int


class IngestBatch(SQLModel, table=True):
    """One ingest call (a CLI run, an HTTP request)."""

    __tablename__ = "ingest_batch"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    started_ms: int = Field(sa_type=BigInteger)
    finished_ms: int | None = Field(default=None, sa_type=BigInteger)
    source: str
    status: str = "running"
    counts_json: str = Field(default="{}", sa_type=Text)


class Quarantine(SQLModel, table=True):
    """An input record that was rejected, with where it came from and why."""

    __tablename__ = "quarantine"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    batch_id: int = Field(index=True)
    at_ms: int = Field(sa_type=BigInteger)
    source: str
    position: str
    error: str
    raw: str = Field(sa_type=Text)


class AuditEvent(SQLModel, table=True):
    """One link of the append-only, hash-chained audit log."""

    __tablename__ = "audit_event"
    seq: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    at_ms: int = Field(sa_type=BigInteger)
    actor: str
    action: str
    details_json: str = Field(sa_type=Text)
    prev_hash: str
    hash: str
