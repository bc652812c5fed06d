"""Which revision a store is at, and a new store's schema in one step, without Alembic.

Every command opens the store and asks whether its schema is current, and every first use
creates one. Asking Alembic means importing it and loading every migration script, and a
new store replayed migrations 0001..0008 one by one: together ~0.3-0.45 s of CPU in each
process that made a store, ~0.2 s in each that opened one (measured with
``time.process_time``, this project's 2-core machines). Here instead:

- the head revisions are read from the migration files' ``revision`` and ``down_revision``
  (a test holds them equal to Alembic's own ``ScriptDirectory`` heads, branches included);
- the recorded revisions are the rows of ``alembic_version``, which is what Alembic reads;
- an empty database gets the models' tables in one transaction and is stamped at the heads:
  Alembic's "create_all + stamp" recipe for building an up-to-date database from scratch. A
  test holds the result identical to the migrated schema (tables, columns in order, types,
  defaults, keys, indexes, WITHOUT ROWID, AUTOINCREMENT, triggers, pragmas, rows) on SQLite
  and PostgreSQL.

A store behind its head still upgrades through the migrations (``engine.upgrade_schema``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex, CreateTable

from medsleep.store.tables import METADATA, READING, READING_ADDED_COLUMNS

VERSIONS = Path(__file__).with_name("migrations") / "versions"

# The table Alembic keeps its revisions in, as Alembic creates it (alembic.runtime.migration).
ALEMBIC_VERSION = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)

# Columns a later migration added to a table that existed before: ALTER TABLE ... ADD COLUMN
# puts them last, so a new store puts them last too (the models declare them in between).
_ADDED_LATER: dict[str, tuple[str, ...]] = {READING.name: tuple(READING_ADDED_COLUMNS)}


def _declared(path: Path) -> tuple[str | None, tuple[str, ...]]:
    """A migration file's ``revision`` and its ``down_revision`` (none, one or several)."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            found[target.id] = ast.literal_eval(value)
    revision, down = found.get("revision"), found.get("down_revision")
    downs = [down] if isinstance(down, str) else list(down or ())  # type: ignore[call-overload]
    return (revision if isinstance(revision, str) else None), tuple(map(str, downs))


def head_revisions(versions: Path = VERSIONS) -> tuple[str, ...]:
    """The revisions no other migration builds on, sorted."""
    revisions: set[str] = set()
    below: set[str] = set()
    for path in versions.glob("*.py"):
        revision, downs = _declared(path)
        if revision is not None:
            revisions.add(revision)
            below.update(downs)
    return tuple(sorted(revisions - below))


def recorded_revisions(conn: Connection) -> tuple[str, ...]:
    """The revisions the store records (empty for a store Alembic never touched), sorted."""
    if not inspect(conn).has_table(ALEMBIC_VERSION.name):
        return ()
    return tuple(sorted(conn.execute(select(ALEMBIC_VERSION.c.version_num)).scalars()))


def is_empty(conn: Connection) -> bool:
    """Whether the database has no tables at all (in its default schema on PostgreSQL)."""
    return not inspect(conn).get_table_names()


def create_at_head(conn: Connection) -> None:
    """Create every table of the models, as the migrations would, and record the heads.

    Runs on the caller's connection, inside the caller's transaction (one for the whole)."""
    for table in METADATA.sorted_tables:
        ddl = CreateTable(table)
        later = _ADDED_LATER.get(table.name, ())
        ddl.columns.sort(key=lambda column: column.element.name in later)  # stable: order kept
        conn.execute(ddl)
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            conn.execute(CreateIndex(index))
    conn.execute(CreateTable(ALEMBIC_VERSION))
    conn.execute(ALEMBIC_VERSION.insert(), [{"version_num": head} for head in head_revisions()])
