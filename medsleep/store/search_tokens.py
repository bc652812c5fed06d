"""What search by ``category`` and ``identifier`` needs, taken from a resource at ingest.

Bodies are compressed (``store.bodies``), so SQL cannot look into a resource's JSON. Each
resource version keeps instead, in ``resource_seen.search_tokens``, the ids of its category
codings and identifiers as `` 3 17 `` (spaces around every id, so ``LIKE '% 3 %'`` matches one
id exactly on every dialect). The (kind, system, code) triples themselves are stored once, in
``search_token``: the thousands of Observations of one monitor share one category, so a
resource pays a few bytes, not the ~70 of the coding's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from medsleep.store.tables import SEARCH_TOKEN

_token = SEARCH_TOKEN
CATEGORY = "category"
IDENTIFIER = "identifier"
# (kind, system or "" when the coding or identifier names none, code or value)
Token = tuple[str, str, str]
# Longer is no real category or identifier, and PostgreSQL cannot index a key past ~2.7 kB:
# such a token is left out (the resource is stored; search does not find it by that token).
MAX_TOKEN_CHARS = 512


def tokens_of(resource: object) -> tuple[Token, ...]:
    """The category codings and identifiers of a resource (a parsed JSON object) that search
    can match: those whose code or value is a string."""
    if not isinstance(resource, dict):
        return ()
    found: list[Token] = []
    categories = resource.get("category")
    for concept in categories if isinstance(categories, list) else ():
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for coding in codings if isinstance(codings, list) else ():
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                found.append((CATEGORY, _system(coding), coding["code"]))
    identifiers = resource.get("identifier")
    for identifier in identifiers if isinstance(identifiers, list) else ():
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            found.append((IDENTIFIER, _system(identifier), identifier["value"]))
    return tuple(dict.fromkeys(t for t in found if len(t[1]) <= MAX_TOKEN_CHARS >= len(t[2])))


def _system(item: Mapping[str, Any]) -> str:
    system = item.get("system")
    return system if isinstance(system, str) else ""


def token_ids(conn: Connection, tokens: Iterable[Token]) -> dict[Token, int]:
    """The id of each token, adding the ones the store has not seen (a concurrent writer
    adding the same one is no conflict)."""
    wanted = set(tokens)
    if not wanted:
        return {}
    known = _lookup(conn, wanted)
    missing = [{"kind": k, "system": s, "code": c} for k, s, c in sorted(wanted - known.keys())]
    if missing:
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(dialect_insert(_token).on_conflict_do_nothing(), missing)
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


def encode(ids: Iterable[int]) -> str | None:
    """``resource_seen.search_tokens`` for these ids: `` 3 17 ``, or None for none."""
    ordered = sorted(set(ids))
    return f" {' '.join(map(str, ordered))} " if ordered else None


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
