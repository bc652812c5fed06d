"""Archived versions by key digest: ``resource_archived`` (blake2b-128 of the key, version,
batch) instead of a bodiless ``resource_seen`` row with the whole key (see
store.archived_versions).

Carries an existing store over: every version whose body was released (no body, no id range:
none of its readings is hot) moves to the new table. A SQLite store keeps the freed pages
until auto-vacuum or ``medsleep db vacuum`` returns them.

The downgrade refuses while any version is archived: it would need the keys back, and a
digest cannot give them. Dropping the rows instead would make re-ingest of an archived
resource store its readings a second time. Restore what was archived first, or stay.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medsleep.store.archived_versions import ArchivedVersionsDowngradeError, compact_released

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_archived",
        sa.Column("key_digest", sa.LargeBinary(), primary_key=True),
        sa.Column("resource_version", sa.String(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    compact_released(op.get_bind())


def downgrade() -> None:
    conn = op.get_bind()
    archived = int(conn.execute(sa.text("SELECT count(*) FROM resource_archived")).scalar_one())
    if archived:
        raise ArchivedVersionsDowngradeError(
            f"{archived} resource versions are archived by key digest; revision 0008 needs "
            "their keys, which a digest cannot give back (restore them first)"
        )
    op.drop_table("resource_archived")
