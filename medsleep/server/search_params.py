"""The query string of ``GET /fhir/Observation`` (and of ``If-None-Exist``), checked whole.

Unknown names are an error rather than silently ignored, so a typo cannot widen a search over
patient data. Every value that cannot be answered is a 400 naming the parameter, never a 500:
dates at the ends of the calendar, empty references, more OR values than one SQL statement
holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from medsleep.server.fhir_http import FhirError
from medsleep.timefmt import to_ms

DEFAULT_COUNT, MAX_COUNT = 100, 1000
# OR values one search may hold (SQLite's expression tree is 1,000 deep), and ANDed dates.
MAX_VALUES, MAX_DATES = 200, 20
SEARCH_PARAMS = (
    "patient",
    "subject",
    "code",
    "date",
    "_id",
    "status",
    "category",
    "identifier",
    "_count",
    "_offset",
    "_sort",
    "_summary",
    "_elements",
    "_total",
    "_totalMethod",  # fhirpy's count() sends it (an Aidbox name): a total is always given
    "_format",
)
DATE_PREFIXES = ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb")
SORTS = ("date", "-date")
_END_OF_TIME = to_ms(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) + 1

Token = tuple[str | None, str]  # (system or None for any, code or value)


@dataclass(frozen=True)
class ObservationSearch:
    patients: tuple[str, ...] = ()
    codes: tuple[Token, ...] = ()
    dates: tuple[tuple[str, int, int], ...] = ()  # (prefix, start ms, end ms)
    ids: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    categories: tuple[Token, ...] = ()
    identifiers: tuple[Token, ...] = ()
    count: int = DEFAULT_COUNT
    offset: int = 0
    newest_first: bool = False
    summary_count: bool = False
    elements: tuple[str, ...] | None = None
    query: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # for page links


def bad(diagnostics: str) -> FhirError:
    return FhirError(400, "invalid", diagnostics)


def _patient_id(value: str) -> str:
    parts = value.strip().split("/")
    if len(parts) > 1 and parts[-2] != "Patient":
        raise bad(f"patient={value!r}: only Patient references are searchable (Patient/ID)")
    if not parts[-1]:
        raise bad(f"patient={value!r}: the reference has no id")
    return parts[-1]


def _token(value: str) -> Token:
    if "|" in value:
        system, _, code = value.partition("|")
        return system or None, code
    return None, value


def date_range(value: str) -> tuple[int, int]:
    """[start, end) in epoch ms of a FHIR date or dateTime at its own precision (UTC if no
    zone is given), e.g. ``2026-01-05`` is that whole day; the last day of year 9999 ends at
    the end of time instead of overflowing."""
    try:
        if len(value) == 4:
            start = datetime(int(value), 1, 1, tzinfo=UTC)
            return to_ms(start), _after(start, lambda s: s.replace(year=s.year + 1))
        if len(value) == 7:
            start = datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
            return to_ms(start), _after(start, lambda s: (s + timedelta(days=32)).replace(day=1))
        if len(value) == 10:
            start = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return to_ms(start), _after(start, lambda s: s + timedelta(days=1))
        moment = datetime.fromisoformat(value)
        start_ms = to_ms(moment)
    except (ValueError, OverflowError) as exc:
        raise bad(f"date={value!r} is not a FHIR date or dateTime in years 1-9999") from exc
    clock = value[11:].split("+")[0].split("-")[0].rstrip("Z")
    precision = timedelta(minutes=1) if clock.count(":") == 1 else timedelta(seconds=1)
    if "." in clock:
        precision = timedelta(milliseconds=1)
    return start_ms, start_ms + max(1, precision // timedelta(milliseconds=1))


def _after(start: datetime, step: Callable[[datetime], datetime]) -> int:
    try:
        return to_ms(step(start))
    except (ValueError, OverflowError):
        return _END_OF_TIME


def _date(value: str) -> tuple[str, int, int]:
    has_prefix = value[:2].isalpha() and value[2:3].isdigit()
    prefix = value[:2] if has_prefix else "eq"
    if prefix not in DATE_PREFIXES:
        raise bad(f"date prefix {prefix!r} is not supported ({', '.join(DATE_PREFIXES)})")
    start, end = date_range(value[2:] if has_prefix else value)
    return prefix, start, end


def _int(params: Mapping[str, Sequence[str]], name: str, default: int, high: int) -> int:
    """A whole number >= 0, clamped to ``high`` (the spec: a server may return fewer)."""
    values = params.get(name) or [str(default)]
    try:
        number = int(values[-1])
    except ValueError as exc:
        raise bad(f"{name}={values[-1]!r} is not a whole number") from exc
    if number < 0:
        raise bad(f"{name} must be 0 or more")
    return min(number, high)


def _one(params: Mapping[str, Sequence[str]], name: str, allowed: Sequence[str]) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if values[-1] not in allowed:
        raise bad(f"{name}={values[-1]!r} is not supported (one of: {', '.join(allowed)})")
    return values[-1]


def parse_search(params: Mapping[str, Sequence[str]]) -> ObservationSearch:
    """The search of a query string (each name to all its values)."""
    unknown = sorted(set(params) - set(SEARCH_PARAMS))
    if unknown:
        raise bad(f"unsupported search parameter(s): {', '.join(unknown)}")

    def split(name: str) -> list[str]:
        return [v for value in params.get(name, []) for v in value.split(",") if v]

    values = sum(len(split(name)) for name in SEARCH_PARAMS if not name.startswith("_"))
    if values > MAX_VALUES:
        raise bad(f"{values:,} search values; at most {MAX_VALUES} in one search")
    dates = [v for v in params.get("date", []) if v]
    if len(dates) > MAX_DATES:
        raise bad(f"{len(dates)} date parameters; at most {MAX_DATES}")
    elements = split("_elements")
    _one(params, "_total", ("none", "estimate", "accurate"))  # a total is always given
    return ObservationSearch(
        patients=tuple(_patient_id(v) for v in [*split("patient"), *split("subject")]),
        codes=tuple(_token(v) for v in split("code")),
        dates=tuple(_date(v) for v in dates),
        ids=tuple(split("_id")),
        statuses=tuple(split("status")),
        categories=tuple(_token(v) for v in split("category")),
        identifiers=tuple(_token(v) for v in split("identifier")),
        count=_int(params, "_count", DEFAULT_COUNT, MAX_COUNT),
        offset=_int(params, "_offset", 0, 10**9),
        newest_first=_one(params, "_sort", SORTS) == "-date",
        summary_count=_one(params, "_summary", ("count", "false")) == "count",
        elements=tuple(elements) if elements else None,
        query=tuple(
            (name, value)
            for name in SEARCH_PARAMS
            if name not in ("_count", "_offset", "_format", "_totalMethod")
            for value in params.get(name, [])
        ),
    )
