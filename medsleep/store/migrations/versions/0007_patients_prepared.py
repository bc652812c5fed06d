"""Patients and prepared digests: demographics from the input's Patient resources, and the
morning digest computed during the consolidation run with the data watermark it came from.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("patient", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("mrn", sa.String(), nullable=False),
        sa.Column("birth_date", sa.String(), nullable=False),
        sa.Column("resource_version", sa.String(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("patient"),
    )
    op.create_table(
        "prepared_digest",
        sa.Column("id", BigId, nullable=False),
        sa.Column("night_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("night_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("tz", sa.String(), nullable=False),
        sa.Column("policy_digest", sa.String(), nullable=False),
        sa.Column("watermark", sa.String(), nullable=False),
        sa.Column("computed_ms", sa.BigInteger(), nullable=False),
        sa.Column("rows_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_prepared_digest_night",
        "prepared_digest",
        ["night_start_ms", "night_end_ms", "tz", "policy_digest"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("prepared_digest")
    op.drop_table("patient")
