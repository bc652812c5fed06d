"""Clinical review: clinicians' marks that a patient's night or episode was reviewed.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review",
        sa.Column("id", BigId, nullable=False),
        sa.Column("patient", sa.String(), nullable=False),
        sa.Column("night_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("night_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("episode_start_ms", sa.BigInteger(), nullable=True),
        sa.Column("reviewer", sa.String(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_review_patient_night", "review", ["patient", "night_start_ms"], unique=False
    )


def downgrade() -> None:
    op.drop_table("review")
