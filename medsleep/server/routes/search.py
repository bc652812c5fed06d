"""``GET /fhir/Observation``: a searchset Bundle over the hot store, with its ``total``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from medsleep.server.deps import Base, ReadToken, Store
from medsleep.server.fhir_http import FhirResponse
from medsleep.server.hot_store import search_observations
from medsleep.server.present import resource_of
from medsleep.server.search_params import parse_search

router = APIRouter(tags=["fhir"])


@router.get("/fhir/Observation", summary="Search the hot store")
async def search(request: Request, store: Store, base: Base, _token: ReadToken) -> FhirResponse:
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    found = parse_search(params)
    page = await run_in_threadpool(search_observations, store, found)

    def link(relation: str, offset: int) -> dict[str, str]:
        query = [*found.query, ("_count", str(found.count)), ("_offset", str(offset))]
        return {"relation": relation, "url": f"{base}/Observation?{urlencode(query)}"}

    links = [link("self", found.offset)]
    if page.more:  # never with _count=0 or _summary=count: a next link must move on
        links.append(link("next", found.offset + found.count))
    if found.offset and found.count:
        links.append(link("previous", max(0, found.offset - found.count)))
    entries: list[dict[str, Any]] = []
    for stored in page.found:
        resource = resource_of(stored, found.elements)
        rid = resource.get("id")
        entries.append(
            {
                "fullUrl": f"{base}/Observation/{rid}" if rid else stored.resource_key,
                "resource": resource,
                "search": {"mode": "match"},
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return FhirResponse(bundle)
