"""Observations in the hot store, as the server reads them: search, read, and the versions
an update or a delete builds on.

A hot-store Observation is the original text its resource version keeps once for all its
readings (one row per numeric part of the resource; ``store.bodies``). Search matches readings,
never the compressed text (category and identifier through ``store.search_tokens``), and
answers each matching resource once, oldest effective time first (or newest, ``_sort=-date``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, and_, exists, false, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from medsleep.server.fhir_http import keys_for_id
from medsleep.server.search_params import ObservationSearch, Token
from medsleep.store.archived_versions import stored_versions
from medsleep.store.bodies import texts_of
from medsleep.store.resource_ranges import readings_of
from medsleep.store.search_tokens import CATEGORY, IDENTIFIER
from medsleep.store.tables import HOT_STATES, INGEST_BATCH, READING, RESOURCE_SEEN
from medsleep.store.token_ids import matching_ids

_reading = READING
_seen = RESOURCE_SEEN
_batch = INGEST_BATCH
HOT = HOT_STATES


@dataclass(frozen=True)
class StoredObservation:
    """One stored version of an Observation, with what the server adds when it answers it."""

    resource_json: str
    resource_key: str
    version: str
    patient: str
    stored_ms: int  # when its ingest batch started: its lastUpdated if it names none


@dataclass(frozen=True)
class SearchPage:
    found: list[StoredObservation]
    total: int
    more: bool


def _date_condition(prefix: str, start: int, end: int) -> ColumnElement[bool]:
    t = _reading.c.effective_ms
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": and_(t >= start, t < end),
        "ne": or_(t < start, t >= end),
        "gt": t >= end,
        "sa": t >= end,
        "ge": t >= start,
        "lt": t < start,
        "eb": t < start,
        "le": t < end,
    }
    return conditions[prefix]


def _codes(codes: tuple[Token, ...]) -> ColumnElement[bool]:
    any_system = [code for system, code in codes if system is None]
    with_system = [(system, code) for system, code in codes if system is not None]
    return or_(
        _reading.c.code.in_(any_system),
        *(and_(_reading.c.code == c, _reading.c.code_system == s) for s, c in with_system),
    )


def _token_match(conn: Connection, kind: str, wanted: tuple[Token, ...]) -> ColumnElement[bool]:
    """Readings whose resource version has a category (identifier) token among ``wanted``:
    columns extracted at ingest (store.search_tokens), since the stored JSON is compressed."""
    ids = matching_ids(conn, kind, wanted)
    if not ids:
        return false()
    return exists().where(
        _seen.c.resource_key == _reading.c.resource_key,
        _seen.c.resource_version == _reading.c.resource_version,
        or_(*(_seen.c.search_tokens.like(f"% {i} %") for i in ids)),
    )


def _conditions(conn: Connection, search: ObservationSearch) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [_reading.c.state.in_(HOT)]
    if search.patients:
        conditions.append(_reading.c.patient.in_(search.patients))
    if search.codes:
        conditions.append(_codes(search.codes))
    conditions.extend(_date_condition(*date) for date in search.dates)
    if search.ids:
        keys = [key for rid in search.ids for key in keys_for_id(rid)]
        conditions.append(readings_of(keys))
    if search.statuses:
        conditions.append(_reading.c.status.in_(search.statuses))
    if search.categories:
        conditions.append(_token_match(conn, CATEGORY, search.categories))
    if search.identifiers:
        conditions.append(_token_match(conn, IDENTIFIER, search.identifiers))
    return conditions


def _stored(conn: Connection, row_ids: list[int]) -> dict[int, StoredObservation]:
    if not row_ids:
        return {}
    query = (
        select(
            _reading.c.id,
            _reading.c.resource_key,
            _reading.c.resource_version,
            _reading.c.patient,
            _batch.c.started_ms,
        )
        .select_from(_reading.outerjoin(_batch, _batch.c.id == _reading.c.batch_id))
        .where(_reading.c.id.in_(row_ids))
    )
    rows = conn.execute(query).all()
    texts = texts_of(conn, [(str(r.resource_key), str(r.resource_version)) for r in rows])
    return {
        int(r.id): StoredObservation(
            texts[pair],
            *pair,
            str(r.patient),
            int(r.started_ms or 0),
        )
        for r in rows
        if (pair := (str(r.resource_key), str(r.resource_version))) in texts
    }


def search_observations(engine: Engine, search: ObservationSearch) -> SearchPage:
    """The matching Observations on the page, the total number of matches, and whether
    there is a next page."""
    with engine.connect() as conn:
        return _search(conn, search)


def _search(conn: Connection, search: ObservationSearch) -> SearchPage:
    conditions = _conditions(conn, search)
    total = select(func.count(func.distinct(_reading.c.resource_key))).where(*conditions)
    first = func.min(_reading.c.effective_ms).label("first_ms")
    order = (
        (first.desc(), _reading.c.resource_key.desc())
        if search.newest_first
        else (
            first,
            _reading.c.resource_key,
        )
    )
    page = (
        select(_reading.c.resource_key, first, func.min(_reading.c.id).label("row_id"))
        .where(*conditions)
        .group_by(_reading.c.resource_key)
        .order_by(*order)
        .limit(search.count + 1)
        .offset(search.offset)
    )
    matches = int(conn.execute(total).scalar_one())
    rows = conn.execute(page).all() if search.count and not search.summary_count else []
    ids = [int(row.row_id) for row in rows[: search.count]]
    found = _stored(conn, ids)
    return SearchPage([found[i] for i in ids if i in found], matches, len(rows) > search.count)


@dataclass(frozen=True)
class ReadResult:
    status: str  # found, gone (retracted or superseded), archived, missing
    stored: StoredObservation | None = None


def read_observation(engine: Engine, rid: str, version: str | None = None) -> ReadResult:
    """The Observation ``rid`` (its active version, or ``version``) from the hot store."""
    keys = keys_for_id(rid)
    query = select(_reading.c.id, _reading.c.state).where(readings_of(keys))
    if version is not None:
        query = query.where(_reading.c.resource_version == version)
    with engine.connect() as conn:
        rows = list(conn.execute(query.order_by(_reading.c.id.desc())).all())
        if not rows:  # stored once, hot or archived since (store.archived_versions)
            stored = [v for found in stored_versions(conn, keys).values() for v in found]
            if version is not None:
                stored = [v for v in stored if v == version]
            return ReadResult("archived" if stored else "missing")
        hot = [row for row in rows if row.state in HOT]
        if version is None and not hot:
            return ReadResult("gone")
        row_id = int((hot or rows)[0].id)
        return ReadResult("found", _stored(conn, [row_id])[row_id])


@dataclass(frozen=True)
class Versions:
    """What an update or delete of ``Observation/{id}`` builds on."""

    seen: frozenset[str]  # every version ever stored (hot or archived)
    current: str | None  # the active hot version, if there is one

    def next_version(self) -> str:
        """The next integer versionId: one above the highest integer one stored."""
        numbers = [int(v) for v in self.seen if v.isdigit()]
        candidate = max(numbers, default=0) + 1
        while str(candidate) in self.seen:
            candidate += 1
        return str(candidate)


def versions_of(engine: Engine, key: str) -> Versions:
    with engine.connect() as conn:
        versions = frozenset(stored_versions(conn, [key]).get(key, {}))
        current = conn.execute(
            select(_reading.c.resource_version)
            .where(readings_of([key]), _reading.c.state.in_(HOT))
            .order_by(_reading.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    return Versions(versions, None if current is None else str(current))
