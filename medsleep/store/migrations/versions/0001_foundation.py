"""Foundation: readings, dedupe index, ingest batches, quarantine, audit chain.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reading",
        sa.Column("patient", sa.String(), nullable=False),
        sa.Column("code_system", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(), nullable=False),
        sa.Column("orig_value", sa.Float(), nullable=False),
        sa.Column("orig_unit", sa.String(), nullable=False),
        sa.Column("resource_key", sa.String(), nullable=False),
        sa.Column("resource_version", sa.String(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("effective_ms", sa.BigInteger(), nullable=False),
        sa.Column("resource_json", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_reading_series", "reading", ["patient", "code", "effective_ms"])
    op.create_index("ix_reading_resource", "reading", ["resource_key"])
    op.create_table(
        "resource_seen",
        sa.Column("resource_key", sa.String(), primary_key=True),
        sa.Column("resource_version", sa.String(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ingest_batch",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("counts_json", sa.Text(), nullable=False),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("position", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
    )
    op.create_index("ix_quarantine_batch_id", "quarantine", ["batch_id"])
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_event", "quarantine", "ingest_batch", "resource_seen", "reading"):
        op.drop_table(table)
