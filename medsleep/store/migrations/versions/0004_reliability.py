"""Reliability: keyed audit hashes, and who runs an ingest batch (to close killed ones).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: an unkeyed sha256 link (every event before this revision); else the key's id.
    op.add_column("audit_event", sa.Column("key_id", sa.String(), nullable=True))
    # host:pid of the process running the batch, so a later one can tell it was killed.
    op.add_column("ingest_batch", sa.Column("owner", sa.String(), nullable=True))
    # every ingest looks for running batches: an index, not a scan of every request's batch
    op.create_index("ix_ingest_batch_status", "ingest_batch", ["status"])


def downgrade() -> None:
    op.drop_index("ix_ingest_batch_status", table_name="ingest_batch")
    with op.batch_alter_table("ingest_batch") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("key_id")
