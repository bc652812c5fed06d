"""What search by category and identifier matches, taken out of a resource at ingest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
from sqlalchemy import Engine

from medsleep.ingest import ingest_paths
from medsleep.server.hot_store import search_observations
from medsleep.server.search_params import ObservationSearch
from medsleep.store.search_tokens import CATEGORY, IDENTIFIER, tokens_of
from tests.helpers import observation, readings


def test_tokens_are_the_coded_categories_and_valued_identifiers_once() -> None:
    resource = {
        "category": [
            {"coding": [{"system": "urn:c", "code": "vital-signs"}, {"code": "vital-signs"}]},
            {"coding": [{"system": "urn:c", "code": "vital-signs"}, {"display": "no code"}]},
            "not a concept",
        ],
        "identifier": [{"system": "urn:w", "value": "dev-1"}, {"value": 5}, {"value": "dev-2"}],
    }
    assert tokens_of(resource) == (
        (CATEGORY, "urn:c", "vital-signs"),
        (CATEGORY, "", "vital-signs"),
        (IDENTIFIER, "urn:w", "dev-1"),
        (IDENTIFIER, "", "dev-2"),
    )
    assert tokens_of([]) == ()
    assert tokens_of({"category": "x", "identifier": {"value": "y"}}) == ()


def test_a_huge_identifier_is_stored_but_not_a_search_token(engine: Engine, tmp_path: Path) -> None:
    """PostgreSQL cannot index a key past ~2.7 kB (this one does not compress): before the
    limit the chunk failed there, and SQLite kept a token no search needs."""
    huge = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(100))
    resource = observation(
        "big", version="1", identifier=[{"value": huge}, {"system": "urn:w", "value": "ok"}]
    )
    path = tmp_path / "in.ndjson"
    path.write_bytes(orjson.dumps(resource) + b"\n")
    report = ingest_paths(engine, [path])
    assert report.stored == 1
    assert readings(engine)[0]["resource_json"] == orjson.dumps(resource).decode()

    def found(value: str) -> list[str]:
        page = search_observations(engine, ObservationSearch(identifiers=((None, value),)))
        return [f.resource_key for f in page.found]

    assert found("ok") == ["Observation/big"]
    assert found(huge) == []
