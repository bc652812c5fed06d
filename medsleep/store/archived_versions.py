"""Resource versions whose readings are all archived: kept by a digest of the key, not the key.

A version stays in ``resource_seen`` (key, body, id range) while any of its readings is hot.
Once a night has archived them all, ``store.bodies.release_bodies`` drops its body in the
shard's transaction and ``compact_released`` moves it here after the night: what
re-ingest needs to stay idempotent and supersede correctly is only that (key, version) was
stored, and by which batch. The key becomes its blake2b-128 digest (16 bytes; a generator's
``Observation/icu-0001-1994-3-29459601`` is 36), in a WITHOUT ROWID table on SQLite whose
primary key is the row. Restore moves the version back (``take_back``).

A collision (two keys with one digest) would make ingest take a new resource for a duplicate
of an archived one and skip it: a lost reading. With 128 bits, the chance of any collision
among n keys is about n² / 2¹²⁹: ~1.5e-21 at a billion resources, far below the rate of
undetected disk and memory errors. 64 bits would be ~3e-2 at a billion: not enough.

Every reader of "was this version stored?" asks ``stored_versions``, which looks at both
tables in one statement (one snapshot on PostgreSQL as on SQLite), so a version moving from
one to the other while ingest runs is seen in exactly one of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from medsleep.errors import MedsleepError
from medsleep.store.bulk import insert_rows

DIGEST_BYTES = 16
Pair = tuple[str, str]  # resource key, version
_GROUP = 20_000  # keys per statement


class ArchivedVersionsDowngradeError(MedsleepError):
    """The store keeps archived versions by key digest only; a downgrade would need the keys."""


def key_digest(key: str) -> bytes:
    """The 16 bytes that stand for ``key`` once its version is archived."""
    return hashlib.blake2b(key.encode(), digest_size=DIGEST_BYTES).digest()


def stored_versions(conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, int]]:
    """Every stored version of these keys, hot or archived, with the batch that stored it."""
    unique = sorted(set(keys))
    found: dict[str, dict[str, int]] = {}
    dbapi: Any = conn.connection.driver_connection
    postgres = conn.dialect.name == "postgresql"
    for start in range(0, len(unique), _GROUP):
        part = unique[start : start + _GROUP]
        cursor = dbapi.cursor()
        try:
            if postgres:
                digests = [key_digest(key) for key in part]
                by_digest = dict(zip(digests, part, strict=True))
                cursor.execute(
                    "SELECT resource_key, NULL::bytea, resource_version, batch_id "
                    "FROM resource_seen WHERE resource_key = ANY(%s) UNION ALL "
                    "SELECT NULL, key_digest, resource_version, batch_id "
                    "FROM resource_archived WHERE key_digest = ANY(%s)",
                    (part, digests),
                )
                rows = cursor.fetchall()
            else:
                rows, by_digest = _sqlite_stored(cursor, part)
        finally:
            cursor.close()
        for key, digest, version, batch in rows:
            name = str(key) if key is not None else by_digest[bytes(digest)]
            found.setdefault(name, {})[str(version)] = int(batch)
    return found


# SQLite has no array parameters: the keys go as one JSON array and the digests as one blob,
# cut by json_each's indexes. A join from json_each, not ``IN (SELECT ...)``, which first
# builds a temporary index of the list (measured per 10,000 keys not stored: 7.4 ms against
# 3.1 ms; stored: 12.1 against 7.1 ms).
_HOT = (
    "SELECT s.resource_key, NULL, s.resource_version, s.batch_id FROM json_each(?1) AS j "
    "JOIN resource_seen AS s ON s.resource_key = j.value"
)
_ARCHIVED = (
    "SELECT NULL, a.key_digest, a.resource_version, a.batch_id FROM json_each(?1) AS j "
    f"JOIN resource_archived AS a ON a.key_digest = substr(?2, j.key * {DIGEST_BYTES} + 1, "
    f"{DIGEST_BYTES})"
)
# Before a store's first night nothing is archived, and the digests (4.5 ms per 10,000 keys)
# would find nothing: the hot probe then says so itself, in the same statement (one snapshot),
# with a row of NULLs; only if that row comes back are the archived versions looked up too.
_HOT_OR_ANY_ARCHIVED = (
    f"{_HOT} UNION ALL SELECT NULL, NULL, NULL, NULL WHERE EXISTS (SELECT 1 FROM resource_archived)"
)
_HOT_AND_ARCHIVED = f"{_HOT} UNION ALL {_ARCHIVED}"


def _sqlite_stored(cursor: Any, part: list[str]) -> tuple[list[Any], dict[bytes, str]]:
    """``part``'s stored versions as (key or NULL, digest or NULL, version, batch) rows, and
    the keys by digest."""
    listed = orjson.dumps(part).decode()
    rows = cursor.execute(_HOT_OR_ANY_ARCHIVED, (listed,)).fetchall()
    if all(row[2] is not None for row in rows):  # no NULL row: nothing archived
        return rows, {}
    digests = [key_digest(key) for key in part]  # in part's order: json_each's indexes
    rows = cursor.execute(_HOT_AND_ARCHIVED, (listed, b"".join(digests))).fetchall()
    return rows, dict(zip(digests, part, strict=True))


def archive_versions(conn: Connection, rows: Iterable[Sequence[Any]]) -> int:
    """Record (key, version, batch id) rows as archived; their ``resource_seen`` rows are the
    caller's to delete in the same transaction."""
    digested = sorted((key_digest(str(k)), str(v), int(b)) for k, v, b in rows)
    # sorted: neighbouring digests share B-tree pages, fewer pages touched per chunk
    insert_rows(conn, "resource_archived", ("key_digest", "resource_version", "batch_id"), digested)
    return len(digested)


def take_back(conn: Connection, pairs: Iterable[Pair]) -> dict[Pair, int]:
    """Delete these versions from the archived ones (restore is giving them a hot row again);
    returns the batch id of each that was there."""
    wanted = {(key_digest(k), v): (k, v) for k, v in set(pairs)}
    if not wanted:
        return {}
    dbapi: Any = conn.connection.driver_connection
    taken: dict[Pair, int] = {}
    cursor = dbapi.cursor()
    try:
        if conn.dialect.name == "postgresql":
            digests, versions = zip(*sorted(wanted), strict=True)
            cursor.execute(
                "DELETE FROM resource_archived WHERE (key_digest, resource_version) IN "
                "(SELECT * FROM unnest(%s::bytea[], %s::text[])) "
                "RETURNING key_digest, resource_version, batch_id",
                (list(digests), list(versions)),
            )
            rows = cursor.fetchall()
        else:  # no array parameters: one statement a version (restore's scale, in-process)
            rows = []
            for digest, version in sorted(wanted):
                cursor.execute(
                    "DELETE FROM resource_archived WHERE key_digest = ? "
                    "AND resource_version = ? RETURNING key_digest, resource_version, batch_id",
                    (digest, version),
                )
                rows.extend(cursor.fetchall())
    finally:
        cursor.close()
    for digest, version, batch in rows:
        taken[wanted[(bytes(digest), str(version))]] = int(batch)
    return taken


_RELEASED = "body IS NULL AND first_id IS NULL"  # no body, no id range: no reading is hot
_PAGE = 50_000
_NEXT_PAGE = text(
    "SELECT resource_key, resource_version FROM resource_seen "
    f"WHERE {_RELEASED} AND (resource_key, resource_version) > (:k, :v) "
    "ORDER BY resource_key, resource_version LIMIT :n"
)
# only what is still released when deleted (a restore may have given a row its body back)
_TAKE_PAGE = text(
    f"DELETE FROM resource_seen WHERE {_RELEASED} AND (resource_key, resource_version) > "
    "(:k, :v) AND (resource_key, resource_version) <= (:k1, :v1) "
    "RETURNING resource_key, resource_version, batch_id"
)


def compact_released(conn: Connection) -> int:
    """Move every released version (its body dropped by ``release_bodies``) from
    ``resource_seen`` to ``resource_archived``, in the caller's transaction; returns how many.

    Run once after a night rather than in each shard: a page of the digest-ordered table is
    then written once, not once per shard that inserts into it."""
    if conn.dialect.name == "sqlite":
        return _compact_in_sqlite(conn)
    moved = 0
    last = ("", "")
    while pairs := conn.execute(_NEXT_PAGE, {"k": last[0], "v": last[1], "n": _PAGE}).all():
        end = (str(pairs[-1][0]), str(pairs[-1][1]))
        taken = conn.execute(
            _TAKE_PAGE, {"k": last[0], "v": last[1], "k1": end[0], "v1": end[1]}
        ).all()
        moved += archive_versions(conn, taken)
        last = end
    return moved


def _compact_in_sqlite(conn: Connection) -> int:
    # In SQL with the digest as a function: no row comes up into Python but its key (measured
    # on 570,679 versions: 1.6 s CPU against 4.4 s fetched and inserted from Python). The two
    # statements run in one write transaction, so the DELETE sees the rows the INSERT read.
    dbapi: Any = conn.connection.driver_connection
    dbapi.create_function("medsleep_key_digest", 1, key_digest, deterministic=True)
    cursor = dbapi.cursor()
    try:
        cursor.execute(
            "INSERT INTO resource_archived (key_digest, resource_version, batch_id) "
            "SELECT medsleep_key_digest(resource_key) AS d, resource_version, batch_id "
            f"FROM resource_seen WHERE {_RELEASED} ORDER BY d, resource_version"
        )
        moved = int(cursor.rowcount)
        cursor.execute(f"DELETE FROM resource_seen WHERE {_RELEASED}")
        if cursor.rowcount != moved:
            raise AssertionError(f"moved {moved} archived versions, deleted {cursor.rowcount}")
    finally:
        cursor.close()
    return moved
