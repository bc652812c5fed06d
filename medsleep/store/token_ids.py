"""The ``search_token`` table: the id of each (kind, system, code) that resources carry
(``store.search_tokens`` takes them from a resource), and the ids a search matches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from medsleep.store.search_tokens import Token
from medsleep.store.tables import SEARCH_TOKEN

_token = SEARCH_TOKEN


def token_ids(conn: Connection, tokens: Iterable[Token]) -> dict[Token, int]:
    """The id of each token, adding the ones the store has not seen (a concurrent writer
    adding the same one is no conflict)."""
    wanted = set(tokens)
    if not wanted:
        return {}
    known = _lookup(conn, wanted)
    missing = [{"kind": k, "system": s, "code": c} for k, s, c in sorted(wanted - known.keys())]
    if missing:
        if conn.dialect.name == "postgresql":  # imported here: a SQLite ingest never loads it
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(_token).on_conflict_do_nothing(), missing)
        else:
            conn.execute(sqlite_insert(_token).on_conflict_do_nothing(), missing)
        known = _lookup(conn, wanted)
    return known


def _lookup(conn: Connection, wanted: set[Token]) -> dict[Token, int]:
    codes = sorted({code for _, _, code in wanted})
    found: dict[Token, int] = {}
    for start in range(0, len(codes), 500):
        query = select(_token.c.id, _token.c.kind, _token.c.system, _token.c.code).where(
            _token.c.code.in_(codes[start : start + 500])
        )
        for token_id, kind, system, code in conn.execute(query):
            if (kind, system, code) in wanted:
                found[(str(kind), str(system), str(code))] = int(token_id)
    return found


def matching_ids(
    conn: Connection, kind: str, wanted: Sequence[tuple[str | None, str]]
) -> list[int]:
    """Ids of the tokens of ``kind`` that match any (system, code): a system of None or ""
    matches every system, as the JSON search did."""
    ids: list[int] = []
    for system, code in wanted:
        condition = and_(_token.c.kind == kind, _token.c.code == code)
        if system:
            condition = and_(condition, _token.c.system == system)
        ids.extend(int(i) for i in conn.execute(select(_token.c.id).where(condition)).scalars())
    return sorted(set(ids))
