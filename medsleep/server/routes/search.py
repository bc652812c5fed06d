"""``GET /fhir/Observation``: a searchset Bundle over the hot store."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from medsleep.server.deps import Base, ReadToken, Store
from medsleep.server.fhir_http import FhirResponse
from medsleep.server.hot_store import parse_search, search_observations

router = APIRouter(tags=["fhir"])


@router.get("/fhir/Observation", summary="Search the hot store")
async def search(request: Request, store: Store, base: Base, _token: ReadToken) -> FhirResponse:
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    found = parse_search(params)
    texts, more = await run_in_threadpool(search_observations, store, found)

    def link(relation: str, offset: int) -> dict[str, str]:
        query = [*found.query, ("_count", str(found.count)), ("_offset", str(offset))]
        return {"relation": relation, "url": f"{base}/Observation?{urlencode(query)}"}

    links = [link("self", found.offset)]
    if more:
        links.append(link("next", found.offset + found.count))
    entries = []
    for raw in texts:
        resource = orjson.loads(raw)
        entry: dict[str, Any] = {"resource": resource, "search": {"mode": "match"}}
        if isinstance(resource.get("id"), str):
            entry["fullUrl"] = f"{base}/Observation/{resource['id']}"
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}
    return FhirResponse(bundle)
