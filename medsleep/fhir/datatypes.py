"""FHIR primitive datatype checks for the fields medsleep stores.

The dateTime pattern is fhir_core's own (the library behind fhir.resources), so the fast path
and ``--strict`` agree on what a valid dateTime is. It is written out here rather than read
from ``fhir_core.types``: importing that (with pydantic validators, YAML and package
metadata) cost every ingest process ~30-80 ms of CPU for one string; a test holds the two
equal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from medsleep.timefmt import EARLIEST_MS, LATEST_MS, iso

# fhir_core.types.DateTime.pattern (FHIR R4's dateTime regex)
DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]"
    r"|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|([+\-])((0[0-9]|"
    r"1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
CODE = re.compile(r"[^\s]+(\s[^\s]+)*")
# A dateTime with a time but no zone: invalid FHIR, accepted only with a stated default zone.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_ZONELESS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


class DatatypeError(ValueError):
    """A value that breaks a FHIR datatype rule."""


def parse_datetime_ms(text: object, field: str, default_tz: tzinfo | None) -> int:
    """Epoch milliseconds (UTC) of a FHIR dateTime/instant.

    Partial dates (``2012``, ``2012-09``, ``2012-09-17``) mean the start of that period in
    ``default_tz`` (UTC when None). A time without a zone is an error unless ``default_tz``
    is given.
    """
    if not isinstance(text, str):
        raise DatatypeError(f"{field} must be a string, got {type(text).__name__}")
    if DATETIME.fullmatch(text):
        if "T" in text:
            try:
                moment = datetime.fromisoformat(
                    text[:26] + _tail_zone(text) if _long(text) else text
                )
            except ValueError as exc:
                raise DatatypeError(f"{field} {text!r} is not a real date/time: {exc}") from exc
        else:
            parts = [int(p) for p in text.split("-")] + [1, 1]
            try:
                moment = datetime(parts[0], parts[1], parts[2], tzinfo=default_tz or UTC)
            except ValueError as exc:
                raise DatatypeError(f"{field} {text!r} is not a real date: {exc}") from exc
    elif _ZONELESS.fullmatch(text):
        if default_tz is None:
            raise DatatypeError(
                f"{field} {text!r} has a time but no time zone (FHIR requires one; "
                "pass --default-tz to state one)"
            )
        try:
            moment = datetime.fromisoformat(text).replace(tzinfo=default_tz)
        except ValueError as exc:
            raise DatatypeError(f"{field} {text!r} is not a real date/time: {exc}") from exc
    else:
        raise DatatypeError(f"{field} {text!r} is not a FHIR dateTime")
    ms = (moment - _EPOCH) // _MILLISECOND
    if not EARLIEST_MS <= ms < LATEST_MS:
        raise DatatypeError(
            f"{field} {text!r} is outside the accepted time range "
            f"[{iso(EARLIEST_MS)}, {iso(LATEST_MS)})"
        )
    return ms


def _long(text: str) -> bool:
    # Python parses at most 6 fractional digits; FHIR allows more.
    dot = text.find(".", 19)
    if dot < 0:
        return False
    end = dot + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    return end - dot - 1 > 6


def _tail_zone(text: str) -> str:
    for marker in ("Z", "+", "-"):
        idx = text.rfind(marker, 19)
        if idx > 0:
            return text[idx:]
    return ""


def check_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise DatatypeError(f"{field} {value!r} is not a FHIR id")
    return value


VALID_CODES: set[str] = set()  # codes and units repeat endlessly: check each once
_CODE_CACHE_LIMIT = 100_000


def check_code(value: object, field: str) -> str:
    if isinstance(value, str) and value in VALID_CODES:
        return value
    if not isinstance(value, str) or not CODE.fullmatch(value):
        raise DatatypeError(f"{field} {value!r} is not a FHIR code")
    if len(VALID_CODES) < _CODE_CACHE_LIMIT:
        VALID_CODES.add(value)
    return value


def check_decimal(value: object, field: str) -> float:
    # bool is an int in Python but never a FHIR decimal
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DatatypeError(f"{field} {value!r} is not a FHIR decimal")
    return float(value)
