"""Readings by resource through id ranges: ``resource_seen.first_id``/``last_id`` (the
smallest and largest id of the version's readings) instead of the index on
``reading.resource_key`` (see store.resource_ranges).

Carries an existing store over: each version's range from its readings (a version with none
left in the hot store keeps NULL: restore sets it again), then the index goes. A SQLite store
keeps the index's freed pages until auto-vacuum or ``medsleep db vacuum`` returns them. The
downgrade puts the index back.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("resource_seen", sa.Column("first_id", sa.BigInteger(), nullable=True))
    op.add_column("resource_seen", sa.Column("last_id", sa.BigInteger(), nullable=True))
    # UPDATE ... FROM: SQLite >= 3.33 and PostgreSQL; one pass over reading, not one a version
    op.execute(
        "UPDATE resource_seen SET first_id = r.lo, last_id = r.hi FROM ("
        "SELECT resource_key AS k, resource_version AS v, MIN(id) AS lo, MAX(id) AS hi "
        "FROM reading GROUP BY resource_key, resource_version) AS r "
        "WHERE resource_seen.resource_key = r.k AND resource_seen.resource_version = r.v"
    )
    op.drop_index("ix_reading_resource", table_name="reading")


def downgrade() -> None:
    op.create_index("ix_reading_resource", "reading", ["resource_key"])
    op.drop_column("resource_seen", "last_id")
    op.drop_column("resource_seen", "first_id")
