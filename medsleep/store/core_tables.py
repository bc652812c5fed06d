"""The store's tables as SQLAlchemy Core ``Table`` objects, without SQLModel or the ORM.

GENERATED from ``store.models`` by ``python -m medsleep.store.gen_core_tables``: do not edit
(``tests/store/test_core_tables.py`` fails when this file and the models differ).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

METADATA = MetaData()

ARCHIVE_FILE = Table(
    "archive_file",
    METADATA,
    Column("name", String(), primary_key=True, nullable=False),
    Column("run_id", Integer(), nullable=False),
    Column("patient", String(), nullable=False),
    Column("sha256", String(), nullable=False),
    Column("rows", Integer(), nullable=False),
    Column("bytes", BigInteger(), nullable=False),
    Column("created_ms", BigInteger(), nullable=False),
    Column("state", String(), nullable=False, default="active"),
    Index("ix_archive_file_patient", "patient"),
    Index("ix_archive_file_run_id", "run_id"),
)

AUDIT_EVENT = Table(
    "audit_event",
    METADATA,
    Column("seq", BigInteger(), primary_key=True, nullable=False, autoincrement=False),
    Column("at_ms", BigInteger(), nullable=False),
    Column("actor", String(), nullable=False),
    Column("action", String(), nullable=False),
    Column("details_json", Text(), nullable=False),
    Column("prev_hash", String(), nullable=False),
    Column("hash", String(), nullable=False),
    Column("key_id", String(), nullable=True),
)

BODY_DICTIONARY = Table(
    "body_dictionary",
    METADATA,
    Column("dict_id", BigInteger(), primary_key=True, nullable=False, autoincrement=False),
    Column("data", LargeBinary(), nullable=False),
    Column("created_ms", BigInteger(), nullable=False),
)

EPISODE = Table(
    "episode",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("run_id", Integer(), nullable=False),
    Column("patient", String(), nullable=False),
    Column("start_ms", BigInteger(), nullable=False),
    Column("end_ms", BigInteger(), nullable=False),
    Column("codes", String(), nullable=False),
    Column("worst_json", Text(), nullable=False),
    Column("peak_news2", Integer(), nullable=True),
    Column("reasons", String(), nullable=False),
    Column("readings", Integer(), nullable=False),
    Index("ix_episode_patient", "patient", "start_ms"),
    Index("ix_episode_run_id", "run_id"),
)

INGEST_BATCH = Table(
    "ingest_batch",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("started_ms", BigInteger(), nullable=False),
    Column("finished_ms", BigInteger(), nullable=True),
    Column("source", String(), nullable=False),
    Column("status", String(), nullable=False, default="running"),
    Column("counts_json", Text(), nullable=False, default="{}"),
    Column("owner", String(), nullable=True),
    Index("ix_ingest_batch_status", "status"),
)

LEGAL_HOLD = Table(
    "legal_hold",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("patient", String(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("created_ms", BigInteger(), nullable=False),
    Column("created_by", String(), nullable=False),
    Column("released_ms", BigInteger(), nullable=True),
    Index("ix_legal_hold_patient", "patient"),
)

PATIENT = Table(
    "patient",
    METADATA,
    Column("patient", String(), primary_key=True, nullable=False),
    Column("name", String(), nullable=False, default=""),
    Column("mrn", String(), nullable=False, default=""),
    Column("birth_date", String(), nullable=False, default=""),
    Column("resource_version", String(), nullable=False, default=""),
    Column("updated_ms", BigInteger(), nullable=False),
)

PREPARED_DIGEST = Table(
    "prepared_digest",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("night_start_ms", BigInteger(), nullable=False),
    Column("night_end_ms", BigInteger(), nullable=False),
    Column("tz", String(), nullable=False),
    Column("policy_digest", String(), nullable=False),
    Column("watermark", String(), nullable=False),
    Column("computed_ms", BigInteger(), nullable=False),
    Column("rows_json", Text(), nullable=False),
    Index(
        "ix_prepared_digest_night",
        "night_start_ms",
        "night_end_ms",
        "tz",
        "policy_digest",
        unique=True,
    ),
)

QUARANTINE = Table(
    "quarantine",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("batch_id", Integer(), nullable=False),
    Column("at_ms", BigInteger(), nullable=False),
    Column("source", String(), nullable=False),
    Column("position", String(), nullable=False),
    Column("error", String(), nullable=False),
    Column("raw", Text(), nullable=False),
    Index("ix_quarantine_batch_id", "batch_id"),
)

READING = Table(
    "reading",
    METADATA,
    Column("patient", String(), nullable=False),
    Column("code_system", String(), nullable=False),
    Column("code", String(), nullable=False),
    Column("value", Float(), nullable=False),
    Column("unit", String(), nullable=False),
    Column("orig_value", Float(), nullable=False),
    Column("orig_unit", String(), nullable=False),
    Column("resource_key", String(), nullable=False),
    Column("resource_version", String(), nullable=False),
    Column("part", Integer(), nullable=False),
    Column("status", String(), nullable=False),
    Column("interpretation", String(), nullable=False, default="", server_default=""),
    Column("reference_range", String(), nullable=False, default="", server_default=""),
    Column("batch_id", Integer(), nullable=False),
    Column("state", String(), nullable=False, default="raw"),
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("effective_ms", BigInteger(), nullable=False),
    Index("ix_reading_series", "patient", "code", "effective_ms"),
    sqlite_autoincrement=True,
)

RESOURCE_ARCHIVED = Table(
    "resource_archived",
    METADATA,
    Column("key_digest", LargeBinary(), primary_key=True, nullable=False),
    Column("resource_version", String(), primary_key=True, nullable=False),
    Column("batch_id", Integer(), nullable=False),
    sqlite_with_rowid=False,
)

RESOURCE_SEEN = Table(
    "resource_seen",
    METADATA,
    Column("resource_key", String(), primary_key=True, nullable=False),
    Column("resource_version", String(), primary_key=True, nullable=False),
    Column("batch_id", Integer(), nullable=False),
    Column("body", LargeBinary(), nullable=True),
    Column("search_tokens", Text(), nullable=True),
    Column("first_id", BigInteger(), nullable=True),
    Column("last_id", BigInteger(), nullable=True),
    sqlite_with_rowid=False,
)

RETENTION = Table(
    "retention",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("run_id", Integer(), nullable=False),
    Column("reading_id", BigInteger(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("rule", String(), nullable=False),
    Column("score", Float(), nullable=True),
    Column("threshold", Float(), nullable=True),
    Column("news2", Integer(), nullable=True),
    Column("context_of", BigInteger(), nullable=True),
    Index("ix_retention_reading_id", "reading_id"),
    Index("ix_retention_run_id", "run_id"),
)

REVIEW = Table(
    "review",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("patient", String(), nullable=False),
    Column("night_start_ms", BigInteger(), nullable=False),
    Column("night_end_ms", BigInteger(), nullable=False),
    Column("episode_start_ms", BigInteger(), nullable=True),
    Column("reviewer", String(), nullable=False),
    Column("comment", Text(), nullable=False, default=""),
    Column("created_ms", BigInteger(), nullable=False),
    Index("ix_review_patient_night", "patient", "night_start_ms"),
)

RUN = Table(
    "run",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("started_ms", BigInteger(), nullable=False),
    Column("finished_ms", BigInteger(), nullable=True),
    Column("until_ms", BigInteger(), nullable=False),
    Column("status", String(), nullable=False, default="running"),
    Column("executor", String(), nullable=False, default="local"),
    Column("policy_digest", String(), nullable=False),
    Column("policy_json", Text(), nullable=False),
    Column("shards_total", Integer(), nullable=False, default=0),
    Column("shards_done", Integer(), nullable=False, default=0),
    Column("counts_json", Text(), nullable=False, default="{}"),
    Column("error", Text(), nullable=True),
)

SEARCH_TOKEN = Table(
    "search_token",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("kind", String(), nullable=False),
    Column("system", String(), nullable=False),
    Column("code", String(), nullable=False),
    UniqueConstraint("kind", "system", "code", name="uq_search_token"),
)

SUMMARY = Table(
    "summary",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, nullable=False),
    Column("run_id", Integer(), nullable=False),
    Column("patient", String(), nullable=False),
    Column("code", String(), nullable=False),
    Column("unit", String(), nullable=False),
    Column("band", String(), nullable=False),
    Column("bucket_start_ms", BigInteger(), nullable=False),
    Column("bucket_end_ms", BigInteger(), nullable=False),
    Column("n", Integer(), nullable=False),
    Column("min", Float(), nullable=False),
    Column("max", Float(), nullable=False),
    Column("mean", Float(), nullable=False),
    Column("std", Float(), nullable=True),
    Column("median", Float(), nullable=False),
    Column("first_ms", BigInteger(), nullable=False),
    Column("first_value", Float(), nullable=False),
    Column("last_ms", BigInteger(), nullable=False),
    Column("last_value", Float(), nullable=False),
    Column("values_json", Text(), nullable=True),
    Column("archive_files", Text(), nullable=False),
    Column("state", String(), nullable=False, default="active"),
    Column("superseded_by_run", Integer(), nullable=True),
    Index("ix_summary_run_id", "run_id"),
    Index("ix_summary_series", "patient", "code", "bucket_start_ms"),
)
