"""The tables. Times are epoch milliseconds UTC (``*_ms``) so that bucketing is plain integer
arithmetic on every SQL dialect and the hot path never formats dates.

Data models (no ``table=True``) validate; table models do not (SQLModel's rule), so code that
builds rows from untrusted input validates with the data model or the FHIR layer first.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer, "sqlite")


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
    # The source's own judgement: its interpretation codes (space-separated, e.g. "H" or
    # "HH A") and its reference range as "low..high" in the canonical unit (a side may be
    # empty); "" when the resource gives none.
    interpretation: str = Field(default="", sa_column_kwargs={"server_default": ""})
    reference_range: str = Field(default="", sa_column_kwargs={"server_default": ""})
    batch_id: int
    state: str = "raw"


class Reading(ReadingBase, table=True):
    """One numeric value of one FHIR Observation in the hot store."""

    __tablename__ = "reading"
    __table_args__ = (
        Index("ix_reading_series", "patient", "code", "effective_ms"),
        # No index on resource_key: a resource's readings are found by the id range its
        # resource_seen row keeps (see store.resource_ranges), 52 bytes a reading less.
        # Never reuse the id of a deleted (archived) reading: restore puts it back.
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    effective_ms: int = Field(sa_type=BigInteger)


class ResourceSeen(SQLModel, table=True):
    """A resource version with readings in the hot store (or none ever), with its original
    JSON (zstd, see store.bodies); once a night archives all its readings it moves to
    ``resource_archived``, so that the two together know every version ever stored."""

    __tablename__ = "resource_seen"
    __table_args__ = {"sqlite_with_rowid": False}  # the key is the row: one B-tree, not two
    resource_key: str = Field(primary_key=True)
    resource_version: str = Field(primary_key=True)
    batch_id: int
    body: bytes | None = Field(default=None, sa_type=LargeBinary)
    # ids of its category codings and identifiers for search, see store.search_tokens
    search_tokens: str | None = Field(default=None, sa_type=Text)
    # the smallest and largest id of its readings (None: it has none), see
    # store.resource_ranges
    first_id: int | None = Field(default=None, sa_type=BigInteger)
    last_id: int | None = Field(default=None, sa_type=BigInteger)


class ResourceArchived(SQLModel, table=True):
    """A resource version whose readings are all archived, by the digest of its key (see
    store.archived_versions): what keeps re-ingest idempotent in 16 bytes, not the key."""

    __tablename__ = "resource_archived"
    __table_args__ = {"sqlite_with_rowid": False}
    key_digest: bytes = Field(primary_key=True, sa_type=LargeBinary)  # blake2b-128 of the key
    resource_version: str = Field(primary_key=True)
    batch_id: int


class SearchToken(SQLModel, table=True):
    """A category coding or identifier some stored resource has (see store.search_tokens)."""

    __tablename__ = "search_token"
    __table_args__ = (UniqueConstraint("kind", "system", "code", name="uq_search_token"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    kind: str  # category, identifier
    system: str  # "" when none
    code: str  # the coding's code, the identifier's value


class BodyDictionary(SQLModel, table=True):
    """A zstd dictionary the bodies of ``resource_seen`` are compressed with."""

    __tablename__ = "body_dictionary"
    dict_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    data: bytes = Field(sa_type=LargeBinary)
    created_ms: int = Field(sa_type=BigInteger)


class IngestBatch(SQLModel, table=True):
    """One ingest call (a CLI run, an HTTP request)."""

    __tablename__ = "ingest_batch"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    started_ms: int = Field(sa_type=BigInteger)
    finished_ms: int | None = Field(default=None, sa_type=BigInteger)
    source: str
    status: str = Field(default="running", index=True)
    counts_json: str = Field(default="{}", sa_type=Text)
    owner: str | None = None  # host:pid running it; a dead owner's batch is interrupted


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
    key_id: str | None = None  # None: sha256 link; else HMAC-SHA256 with the key of this id


class Run(SQLModel, table=True):
    """One consolidation run: its window, policy, counts and outcome."""

    __tablename__ = "run"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    started_ms: int = Field(sa_type=BigInteger)
    finished_ms: int | None = Field(default=None, sa_type=BigInteger)
    until_ms: int = Field(sa_type=BigInteger)
    status: str = "running"  # running, committed, partial, failed
    executor: str = "local"
    policy_digest: str
    policy_json: str = Field(sa_type=Text)
    shards_total: int = 0
    shards_done: int = 0
    counts_json: str = Field(default="{}", sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)


class Summary(SQLModel, table=True):
    """The normal readings of one series in one clock-aligned bucket and one NEWS2 band."""

    __tablename__ = "summary"
    __table_args__ = (Index("ix_summary_series", "patient", "code", "bucket_start_ms"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    run_id: int = Field(index=True)
    patient: str
    code: str
    unit: str
    band: str
    bucket_start_ms: int = Field(sa_type=BigInteger)
    bucket_end_ms: int = Field(sa_type=BigInteger)
    n: int
    min: float
    max: float
    mean: float
    std: float | None = None
    median: float
    first_ms: int = Field(sa_type=BigInteger)
    first_value: float
    last_ms: int = Field(sa_type=BigInteger)
    last_value: float
    values_json: str | None = Field(default=None, sa_type=Text)  # artifact runs keep values
    archive_files: str = Field(sa_type=Text)  # JSON list of archive file names
    state: str = "active"  # active, superseded
    superseded_by_run: int | None = None


class Retention(SQLModel, table=True):
    """One reason a reading was kept."""

    __tablename__ = "retention"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    run_id: int = Field(index=True)
    reading_id: int = Field(index=True, sa_type=BigInteger)
    kind: str  # rule, detector, artifact, context
    rule: str
    score: float | None = None
    threshold: float | None = None
    news2: int | None = None
    context_of: int | None = Field(default=None, sa_type=BigInteger)


class Episode(SQLModel, table=True):
    """Retained readings of one patient close in time, across vitals."""

    __tablename__ = "episode"
    __table_args__ = (Index("ix_episode_patient", "patient", "start_ms"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    run_id: int = Field(index=True)
    patient: str
    start_ms: int = Field(sa_type=BigInteger)
    end_ms: int = Field(sa_type=BigInteger)
    codes: str  # comma-separated LOINC codes
    worst_json: str = Field(sa_type=Text)  # {code: worst value}
    peak_news2: int | None = None
    reasons: str  # comma-separated rule names
    readings: int


class ArchiveFileRecord(SQLModel, table=True):
    """One verified Parquet file of the cold archive."""

    __tablename__ = "archive_file"
    name: str = Field(primary_key=True)
    run_id: int = Field(index=True)
    patient: str = Field(index=True)
    sha256: str
    rows: int
    bytes: int = Field(sa_type=BigInteger)
    created_ms: int = Field(sa_type=BigInteger)
    state: str = "active"  # active, restored, purged


class LegalHold(SQLModel, table=True):
    """A patient whose raw readings must never be collapsed."""

    __tablename__ = "legal_hold"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    patient: str = Field(index=True)
    reason: str = Field(sa_type=Text)
    created_ms: int = Field(sa_type=BigInteger)
    created_by: str
    released_ms: int | None = Field(default=None, sa_type=BigInteger)


class Review(SQLModel, table=True):
    """A clinician's mark that a patient's night (or one episode of it) was reviewed."""

    __tablename__ = "review"
    __table_args__ = (Index("ix_review_patient_night", "patient", "night_start_ms"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    patient: str
    night_start_ms: int = Field(sa_type=BigInteger)
    night_end_ms: int = Field(sa_type=BigInteger)
    episode_start_ms: int | None = Field(default=None, sa_type=BigInteger)  # None: whole night
    reviewer: str
    comment: str = Field(default="", sa_type=Text)
    created_ms: int = Field(sa_type=BigInteger)


class PatientRecord(SQLModel, table=True):
    """A patient's demographics from the input's Patient resources (the latest version)."""

    __tablename__ = "patient"
    patient: str = Field(primary_key=True)  # the id readings' subjects refer to
    name: str = ""
    mrn: str = ""  # the medical record number (an identifier typed MR), else the first one
    birth_date: str = ""  # as sent: YYYY, YYYY-MM or YYYY-MM-DD
    resource_version: str = ""
    updated_ms: int = Field(sa_type=BigInteger)


class PreparedDigest(SQLModel, table=True):
    """A night's digest computed ahead (during or after consolidation), valid while the
    night's data still has ``watermark``."""

    __tablename__ = "prepared_digest"
    __table_args__ = (
        Index(
            "ix_prepared_digest_night",
            "night_start_ms",
            "night_end_ms",
            "tz",
            "policy_digest",
            unique=True,
        ),
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    night_start_ms: int = Field(sa_type=BigInteger)
    night_end_ms: int = Field(sa_type=BigInteger)
    tz: str
    policy_digest: str
    watermark: str
    computed_ms: int = Field(sa_type=BigInteger)
    rows_json: str = Field(sa_type=Text)
