"""A lean hot store: each resource's original JSON once, zstd-compressed, in
``resource_seen.body`` instead of in every reading's ``resource_json``; what search by
category and identifier needs in ``resource_seen.search_tokens`` and ``search_token``.

Carries an existing store over: every (key, version) with readings gets its text (that of its
first reading: all readings of one version share it), compressed with a dictionary trained on
the store's own resources, and then ``reading.resource_json`` goes. The downgrade puts the
text back into each reading. A SQLite store created before incremental auto-vacuum keeps the
freed pages until ``medsleep db vacuum``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import time

import orjson
import sqlalchemy as sa
from alembic import op

from medsleep.store.bodies import TRAIN_SAMPLES, BodyReader, BodyWriter
from medsleep.store.search_tokens import encode, tokens_of
from medsleep.store.token_ids import token_ids

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 20_000
_STREAM = {"stream_results": True}  # a server-side cursor on PostgreSQL: not all in memory


def upgrade() -> None:
    op.create_table(
        "body_dictionary",
        sa.Column("dict_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.add_column("resource_seen", sa.Column("body", sa.LargeBinary(), nullable=True))
    op.add_column("resource_seen", sa.Column("search_tokens", sa.Text(), nullable=True))
    op.create_table(
        "search_token",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("system", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.UniqueConstraint("kind", "system", "code", name="uq_search_token"),
    )
    conn = op.get_bind()
    # Versions with readings but no resource_seen row (none are expected): give them one.
    conn.execute(
        sa.text(
            "INSERT INTO resource_seen (resource_key, resource_version, batch_id) "
            "SELECT resource_key, resource_version, MIN(batch_id) FROM reading r "
            "WHERE NOT EXISTS (SELECT 1 FROM resource_seen s WHERE s.resource_key = "
            "r.resource_key AND s.resource_version = r.resource_version) "
            "GROUP BY resource_key, resource_version"
        )
    )
    first_texts = sa.text(
        "SELECT resource_key, resource_version, resource_json FROM reading "
        "WHERE id IN (SELECT MIN(id) FROM reading GROUP BY resource_key, resource_version) "
        "ORDER BY id"
    )
    now_ms = int(time.time() * 1000)
    sampled = conn.execute(first_texts)
    first = sampled.fetchmany(TRAIN_SAMPLES * 5)
    sampled.close()
    samples = [str(row[2]).encode() for row in first]
    writer = BodyWriter(conn, samples, now_ms, [str(row[0]) for row in first])
    update = sa.text(
        "UPDATE resource_seen SET body = :body, search_tokens = :search WHERE resource_key = :key "
        "AND resource_version = :version"
    )
    result = conn.execute(first_texts, execution_options=_STREAM)
    while batch := result.fetchmany(_BATCH):
        tokens = [tokens_of(orjson.loads(str(text))) for _, _, text in batch]
        ids = token_ids(conn, {t for found in tokens for t in found})
        conn.execute(
            update,
            [
                {
                    "key": key,
                    "version": version,
                    "body": writer.compress(str(text).encode(), str(key)),
                    "search": encode([ids[t] for t in found]),
                }
                for (key, version, text), found in zip(batch, tokens, strict=True)
            ],
        )
    op.drop_column("reading", "resource_json")


def downgrade() -> None:
    op.add_column(
        "reading", sa.Column("resource_json", sa.Text(), nullable=False, server_default="")
    )
    conn = op.get_bind()
    reader = BodyReader(conn)
    result = conn.execute(
        sa.text(
            "SELECT resource_key, resource_version, body FROM resource_seen WHERE body IS NOT NULL"
        ),
        execution_options=_STREAM,
    )
    update = sa.text(
        "UPDATE reading SET resource_json = :text WHERE resource_key = :key "
        "AND resource_version = :version"
    )
    while batch := result.fetchmany(_BATCH):
        conn.execute(
            update,
            [
                {"key": key, "version": version, "text": reader.text(body, str(key))}
                for key, version, body in batch
            ],
        )
    op.drop_column("resource_seen", "search_tokens")
    op.drop_column("resource_seen", "body")
    op.drop_table("search_token")
    op.drop_table("body_dictionary")
