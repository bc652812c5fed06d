"""What search by ``category`` and ``identifier`` needs, taken from a resource at ingest.

Bodies are compressed (``store.bodies``), so SQL cannot look into a resource's JSON. Each
resource version keeps instead, in ``resource_seen.search_tokens``, the ids of its category
codings and identifiers as `` 3 17 `` (spaces around every id, so ``LIKE '% 3 %'`` matches one
id exactly on every dialect). The (kind, system, code) triples themselves are stored once, in
``search_token``: the thousands of Observations of one monitor share one category, so a
resource pays a few bytes, not the ~70 of the coding's text.

This module takes the tokens from a resource and imports no SQL (parse workers use it before
the writer has loaded SQLAlchemy); ``store.token_ids`` keeps the ``search_token`` table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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


def encode(ids: Iterable[int]) -> str | None:
    """``resource_seen.search_tokens`` for these ids: `` 3 17 ``, or None for none."""
    ordered = sorted(set(ids))
    return f" {' '.join(map(str, ordered))} " if ordered else None
