"""A resource's readings found by id range, not by an index on ``reading.resource_key``.

The readings of one resource version are written together, so their ids lie in one short
range; its ``resource_seen`` row keeps that range (``first_id``, ``last_id``). A lookup by
resource goes from ``resource_seen``'s key to the range on the reading's primary key and
checks key and version there, so readings of other resources that share the range (other
writers interleaving on PostgreSQL) never match. Measured on plain monitoring input: the
index on ``resource_key`` was 52 bytes a reading; the two ids cost ~5 bytes a resource.

Restore puts readings back under their old ids, inside the range their version keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from medsleep.store.tables import READING, RESOURCE_SEEN

_reading = READING
_seen = RESOURCE_SEEN

Pair = tuple[str, str]  # resource key, version
IdRange = tuple[int, int]  # first and last id, both included


def readings_of(keys: Iterable[str]) -> ColumnElement[bool]:
    """A condition on ``reading``: it belongs to one of these resource keys (any version)."""
    inner = _reading.alias("r")
    ids = (
        select(inner.c.id)
        .select_from(_seen)
        .join(
            inner,
            and_(
                inner.c.id.between(_seen.c.first_id, _seen.c.last_id),
                inner.c.resource_key == _seen.c.resource_key,
                inner.c.resource_version == _seen.c.resource_version,
            ),
        )
        .where(_seen.c.resource_key.in_(sorted(set(keys))))
    )
    return _reading.c.id.in_(ids)


def reserved_reading_ids(conn: Connection, n: int) -> list[int] | None:
    """PostgreSQL: ``n`` ids from the sequence for the next readings, to insert explicitly
    (increasing, not always consecutive: other writers take ids too). SQLite: None; insert
    without ids and ask ``inserted_reading_ids``."""
    if conn.dialect.name != "postgresql":
        return None
    if n == 0:
        return []
    query = text(
        "SELECT nextval(pg_get_serial_sequence('reading', 'id')) "
        "FROM generate_series(1, :n) ORDER BY 1"
    )
    return [int(i) for (i,) in conn.execute(query, {"n": n})]


def inserted_reading_ids(conn: Connection, n: int) -> range:
    """SQLite: the ids of the ``n`` readings this transaction has just inserted. Its first
    insert took the write lock, so nobody else took ids in between: they are the last ``n``
    (AUTOINCREMENT never reuses or skips one)."""
    last = _sqlite_last_id(conn)
    return range(last - n + 1, last + 1)


def _sqlite_last_id(conn: Connection) -> int:
    last = conn.execute(
        text("SELECT seq FROM sqlite_sequence WHERE name = 'reading'")
    ).scalar_one_or_none()
    return int(last or 0)


def ranges_of(
    rows: Sequence[Sequence[object]], ids: Sequence[int], key: int, version: int
) -> dict[Pair, IdRange]:
    """The id range of each (key, version) among ``rows`` inserted with ``ids`` in order."""
    ranges: dict[Pair, list[int]] = {}
    for row, i in zip(rows, ids, strict=True):
        pair = (str(row[key]), str(row[version]))
        found = ranges.get(pair)
        if found is None:
            ranges[pair] = [i, i]
        else:
            found[0], found[1] = min(found[0], i), max(found[1], i)
    return {pair: (lo, hi) for pair, (lo, hi) in ranges.items()}
