"""The source's own judgement of a reading: its interpretation codes and reference range.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NOT NULL with a default: existing rows read "" (the source said nothing), on SQLite too.
    with op.batch_alter_table("reading") as batch:
        batch.add_column(
            sa.Column("interpretation", sa.String(), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("reference_range", sa.String(), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("reading") as batch:
        batch.drop_column("reference_range")
        batch.drop_column("interpretation")
