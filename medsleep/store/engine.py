"""Open a store by URL: engine with the right pragmas, schema created or upgraded to the newest
revision.

Alembic is imported only to upgrade a store behind its head (see ``store.schema``): a new
store is created from the models in one step, and a current one is recognised without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from medsleep.errors import StoreUnavailableError
from medsleep.store.checkpoint import DEFAULT_AUTOCHECKPOINT
from medsleep.store.defaults import DEFAULT_DB_URL
from medsleep.store.schema import create_at_head, head_revisions, is_empty, recorded_revisions
from medsleep.store.space import INCREMENTAL

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _alembic_config(connection: Connection) -> Config:
    config = _config()
    config.attributes["connection"] = connection
    return config


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Only on a new, empty database, where they take effect: on an existing one, setting
    # auto_vacuum rewrites the file's header, so a mere read would change the store's bytes.
    if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
        cursor.execute("PRAGMA page_size=8192")
        # lets a night hand freed pages back (see store.space)
        cursor.execute(f"PRAGMA auto_vacuum={INCREMENTAL}")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: index pages stay hot during bulk writes
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint every 32 MiB of WAL rather than every 8 (bulk ingest checkpoints from its own
    # thread instead, see store.checkpoint); the WAL file is cut back to 64 MiB afterwards.
    cursor.execute(f"PRAGMA wal_autocheckpoint={DEFAULT_AUTOCHECKPOINT}")
    cursor.execute("PRAGMA journal_size_limit=67108864")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` for the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_store_engine(url: str, *, pooled: bool = True) -> Engine:
    """An engine for ``url`` without touching the schema; SQLite never pools connections,
    PostgreSQL does unless ``pooled`` is false."""
    url = normalise_url(url)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, poolclass=NullPool)
            event.listen(engine, "connect", _sqlite_pragmas)
        elif pooled:
            engine = create_engine(url, pool_pre_ping=True)
        else:
            engine = create_engine(url, poolclass=NullPool)
    except (ArgumentError, ImportError) as exc:
        raise StoreUnavailableError(f"cannot use database URL {url!r}: {exc}") from exc
    return engine


_WORKER_ENGINES: dict[tuple[int, str], Engine] = {}
_WORKER_ENGINES_KEPT = 8


def worker_engine(url: str) -> Engine:
    """The engine this process keeps for ``url``, for the night's shards: they share its cache
    of compiled statements (an engine of its own per shard compiled each of its ~6 statements
    again: 0.7 s CPU of a 100-patient night). Without a pool, so no connection outlives its
    shard; per process id, so a forked child never uses its parent's engine."""
    key = (os.getpid(), url)
    engine = _WORKER_ENGINES.get(key)
    if engine is None:
        if len(_WORKER_ENGINES) >= _WORKER_ENGINES_KEPT:
            _WORKER_ENGINES.clear()  # pool-less: nothing to close
        engine = _WORKER_ENGINES[key] = create_store_engine(url, pooled=False)
    return engine


def _joined(revisions: Iterable[str]) -> str | None:
    # Migrations written side by side each start from the revision they were written on:
    # Alembic keeps them as branches and upgrades to all heads, so a store is current when
    # it is at every head. One head reads as its own id.
    return "+".join(sorted(revisions)) or None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _joined(recorded_revisions(conn))


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str | None:
    return _joined(head_revisions())


def _fold_rechained_heads(conn: Connection) -> None:
    """Forget recorded revisions that another recorded one now descends from.

    Two migrations written side by side (0006 and 0007, both on 0005) were later chained
    (0007 after 0006). A store upgraded in between records both as heads; Alembic then
    refuses it ("Requested revision 0007 overlaps with other requested revisions 0006").
    Both were applied, so recording only the descendant is what Alembic would have written."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn)
    recorded = set(context.get_current_heads())
    if len(recorded) < 2:
        return
    script = _script()
    folded = {
        ancestor.revision
        for rev in recorded
        for ancestor in script.iterate_revisions(rev, "base")
        if ancestor.revision != rev and ancestor.revision in recorded
    }
    for rev in sorted(folded):
        log.warning("schema: revision %s is recorded beside a descendant; folding it", rev)
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = :rev"), {"rev": rev})


def upgrade_schema(engine: Engine) -> None:
    """Create the schema of an empty database at the newest revision, or upgrade an existing
    one to it through the migrations (idempotent), atomically.

    PostgreSQL runs DDL in the transaction. SQLite's Python driver does not open one for DDL
    (each CREATE TABLE commits alone): a process killed midway left a half-made schema that
    no command could open. There the whole upgrade runs in one explicit ``BEGIN IMMEDIATE``
    (which also keeps two first users from creating it at once).
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            _create_or_migrate(conn)
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # the driver's own BEGIN
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            _create_or_migrate(conn)
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")


# Held by whoever creates or upgrades a PostgreSQL store, for the length of its transaction
# (SQLite's BEGIN IMMEDIATE does the same there); any fixed key, the same in every process.
_SCHEMA_LOCK_KEY = 0x6D65_6473_6C70  # "medslp"


def _create_or_migrate(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":  # two first users: the second waits, then upgrades
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    # Asked inside the transaction (and the lock): a first user that raced this one has
    # created it already.
    if is_empty(conn):
        create_at_head(conn)
        return
    from alembic import command

    _fold_rechained_heads(conn)
    command.upgrade(_alembic_config(conn), "heads")


def open_store(url: str = DEFAULT_DB_URL, *, upgrade: bool = True) -> Engine:
    """Open the store at ``url``; create or upgrade its schema on first use."""
    engine = create_store_engine(url)
    try:
        if upgrade and current_revision(engine) != head_revision():
            log.info("upgrading schema of %s", engine.url.render_as_string(hide_password=True))
            upgrade_schema(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = " ".join(str(exc.orig or exc).split())
        raise StoreUnavailableError(
            f"cannot open database {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from exc
    return engine
