"""Observation search and read over the hot store, for ``GET /fhir/Observation``.

A hot-store Observation is the ``resource_json`` its readings keep (one row per numeric part of
the resource, all with the same JSON). Search matches readings and answers each matching
resource once, oldest effective time first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from medsleep.server.fhir_http import FhirError, keys_for_id
from medsleep.store.tables import HOT_STATES, READING, RESOURCE_SEEN
from medsleep.timefmt import to_ms

_reading = READING
_seen = RESOURCE_SEEN
HOT = HOT_STATES
DEFAULT_COUNT, MAX_COUNT = 100, 1000
SEARCH_PARAMS = ("patient", "subject", "code", "date", "_count", "_offset", "_format")


@dataclass(frozen=True)
class ObservationSearch:
    patients: tuple[str, ...] = ()
    codes: tuple[tuple[str | None, str], ...] = ()  # (system or None for any, code)
    dates: tuple[tuple[str, int, int], ...] = ()  # (prefix, start ms, end ms)
    count: int = DEFAULT_COUNT
    offset: int = 0
    query: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # for page links


def _bad(diagnostics: str) -> FhirError:
    return FhirError(400, "invalid", diagnostics)


def _patient_id(value: str) -> str:
    rid = value.rstrip("/").rsplit("/", 1)[-1]
    if "/" in value and value.rstrip("/").rsplit("/", 2)[-2] != "Patient":
        raise _bad(f"patient={value!r}: only Patient references are searchable")
    return rid


def _token(value: str) -> tuple[str | None, str]:
    if "|" in value:
        system, _, code = value.partition("|")
        return system, code
    return None, value


def date_range(value: str) -> tuple[int, int]:
    """[start, end) in epoch ms of a FHIR date or dateTime at its own precision (UTC if no
    zone is given), e.g. ``2026-01-05`` is that whole day."""
    try:
        if len(value) == 4:
            start = datetime(int(value), 1, 1, tzinfo=UTC)
            return to_ms(start), to_ms(start.replace(year=start.year + 1))
        if len(value) == 7:
            start = datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
            following = (start + timedelta(days=32)).replace(day=1)
            return to_ms(start), to_ms(following)
        if len(value) == 10:
            start = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return to_ms(start), to_ms(start + timedelta(days=1))
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad(f"date={value!r} is not a FHIR date or dateTime") from exc
    clock = value[11:].split("+")[0].split("-")[0].rstrip("Z")
    precision = timedelta(minutes=1) if clock.count(":") == 1 else timedelta(seconds=1)
    if "." in clock:
        precision = timedelta(milliseconds=1)
    start_ms = to_ms(moment)
    return start_ms, start_ms + max(1, precision // timedelta(milliseconds=1))


def _date(value: str) -> tuple[str, int, int]:
    has_prefix = value[:2].isalpha() and value[2:3].isdigit()
    prefix = value[:2] if has_prefix else "eq"
    if prefix not in ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb"):
        raise _bad(f"date prefix {prefix!r} is not supported (eq, ne, gt, ge, lt, le, sa, eb)")
    start, end = date_range(value[2:] if has_prefix else value)
    return prefix, start, end


def _int(params: Mapping[str, Sequence[str]], name: str, default: int, high: int) -> int:
    values = params.get(name) or [str(default)]
    try:
        number = int(values[-1])
    except ValueError as exc:
        raise _bad(f"{name}={values[-1]!r} is not a whole number") from exc
    if not 0 <= number <= high:
        raise _bad(f"{name} must be between 0 and {high}")
    return number


def parse_search(params: Mapping[str, Sequence[str]]) -> ObservationSearch:
    """The search of a query string (each name to all its values); unknown names are an
    error rather than silently ignored, so a typo cannot widen a search over patient data."""
    unknown = sorted(set(params) - set(SEARCH_PARAMS))
    if unknown:
        raise _bad(f"unsupported search parameter(s): {', '.join(unknown)}")

    def split(name: str) -> list[str]:
        return [v for value in params.get(name, []) for v in value.split(",") if v]

    return ObservationSearch(
        patients=tuple(_patient_id(v) for v in [*split("patient"), *split("subject")]),
        codes=tuple(_token(v) for v in split("code")),
        dates=tuple(_date(v) for v in params.get("date", []) if v),
        count=_int(params, "_count", DEFAULT_COUNT, MAX_COUNT),
        offset=_int(params, "_offset", 0, 10**9),
        query=tuple(
            (name, value)
            for name in SEARCH_PARAMS
            if not name.startswith("_")
            for value in params.get(name, [])
        ),
    )


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


def _conditions(search: ObservationSearch) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [_reading.c.state.in_(HOT)]
    if search.patients:
        conditions.append(_reading.c.patient.in_(search.patients))
    if search.codes:
        conditions.append(
            or_(
                *(
                    _reading.c.code == code
                    if system is None
                    else and_(_reading.c.code == code, _reading.c.code_system == system)
                    for system, code in search.codes
                )
            )
        )
    conditions.extend(_date_condition(*date) for date in search.dates)
    return conditions


def search_observations(engine: Engine, search: ObservationSearch) -> tuple[list[str], bool]:
    """The JSON of the matching Observations on the page, and whether there is a next page."""
    first = func.min(_reading.c.effective_ms).label("first_ms")
    page = (
        select(_reading.c.resource_key, first, func.min(_reading.c.id).label("row_id"))
        .where(*_conditions(search))
        .group_by(_reading.c.resource_key)
        .order_by(first, _reading.c.resource_key)
        .limit(search.count + 1)
        .offset(search.offset)
    )
    with engine.connect() as conn:
        rows = conn.execute(page).all()
        ids = [int(row.row_id) for row in rows[: search.count]]
        found: dict[int, str] = {}
        if ids:
            query = select(_reading.c.id, _reading.c.resource_json).where(_reading.c.id.in_(ids))
            found = {int(r.id): str(r.resource_json) for r in conn.execute(query)}
    return [found[i] for i in ids if i in found], len(rows) > search.count


@dataclass(frozen=True)
class ReadResult:
    status: str  # found, gone (retracted or superseded), archived, missing
    resource_json: str | None = None


def read_observation(engine: Engine, rid: str, version: str | None = None) -> ReadResult:
    """The Observation ``rid`` (its active version, or ``version``) from the hot store."""
    keys = keys_for_id(rid)
    query = select(_reading.c.state, _reading.c.resource_json).where(
        _reading.c.resource_key.in_(keys)
    )
    if version is not None:
        query = query.where(_reading.c.resource_version == version)
    with engine.connect() as conn:
        rows = list(conn.execute(query.order_by(_reading.c.id.desc())).all())
        if not rows:
            seen = select(_seen.c.resource_key).where(_seen.c.resource_key.in_(keys))
            if version is not None:
                seen = seen.where(_seen.c.resource_version == version)
            stored = conn.execute(seen.limit(1)).first() is not None
            return ReadResult("archived" if stored else "missing")
    hot = [row for row in rows if row.state in HOT]
    if version is None and not hot:
        return ReadResult("gone")
    return ReadResult("found", str((hot or rows)[0].resource_json))
