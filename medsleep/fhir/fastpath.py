"""A typed fast path for the common shape of a monitoring Observation.

Bedside monitors send the same shape millions of times: an id (and usually a versionId), a
usual status, one coded value (or the components of a panel) as Quantity or integer, a
``Patient/x`` subject (or a Bundle's ``urn:uuid`` resolved to one) and an
``effectiveDateTime``; Synthea's vital signs have that shape too, without a versionId (their
version is then the content digest, as on the general path). ``fast_parse`` decodes that
shape straight from the raw JSON bytes into typed structs with msgspec (type checks in C) and
returns exactly what ``parse_observation`` would. It declines (returns None) everything else,
from a source's own interpretation to any rule broken, and the caller takes the general path,
which produces the precise skip reason or quarantine error. A differential test holds the two
paths equal.
"""

from __future__ import annotations

import math
import re
from datetime import tzinfo

import msgspec
import orjson
from msgspec import UNSET, Struct, UnsetType

from medsleep.fhir.build import SUMMARY_TAG, TAG_SYSTEM
from medsleep.fhir.datatypes import VALID_CODES, DatatypeError, check_code, check_id
from medsleep.fhir.datatypes import parse_datetime_ms as _parse_datetime_ms
from medsleep.fhir.parse import (
    _PATIENT_OF_REFERENCE,
    MAIN_VALUE,
    ResourceRejected,
    _NoPatient,
    _patient,
    content_digest,
)
from medsleep.fhir.units import LOINC, MDC, UnitError, to_canonical
from medsleep.store.search_tokens import Token, tokens_of

# Statuses whose readings are stored as they are; the rest are skipped by the general path.
_PLAIN_STATUSES = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "unknown"}
)


class _Coding(Struct, gc=False):
    system: str | UnsetType = UNSET
    code: str | UnsetType = UNSET


class _Concept(Struct, gc=False):
    coding: list[_Coding] | UnsetType = UNSET


class _Quantity(Struct, gc=False):
    value: int | float | UnsetType = UNSET
    unit: str | UnsetType = UNSET
    code: str | UnsetType = UNSET
    comparator: str | UnsetType = UNSET


class _Reference(Struct, gc=False):
    reference: str | UnsetType = UNSET


class _Meta(Struct, gc=False):
    versionId: str | UnsetType = UNSET
    lastUpdated: str | UnsetType = UNSET
    tag: list[_Coding] | UnsetType = UNSET


class _Component(Struct, gc=False):
    code: _Concept
    valueQuantity: _Quantity | UnsetType = UNSET
    valueInteger: int | UnsetType = UNSET
    # Seen only to decline: the source's own judgement is read by the general path.
    interpretation: msgspec.Raw | UnsetType = UNSET
    referenceRange: msgspec.Raw | UnsetType = UNSET


class _Observation(Struct, gc=False):
    resourceType: str
    id: str
    status: str
    code: _Concept
    subject: _Reference
    effectiveDateTime: str
    meta: _Meta | UnsetType = UNSET
    valueQuantity: _Quantity | UnsetType = UNSET
    valueInteger: int | UnsetType = UNSET
    component: list[_Component] | UnsetType = UNSET
    interpretation: msgspec.Raw | UnsetType = UNSET
    referenceRange: msgspec.Raw | UnsetType = UNSET
    # For search (store.search_tokens): kept as raw JSON, so that a source's one category
    # is read once and any shape of either is the general path's ``tokens_of``.
    category: msgspec.Raw | UnsetType = UNSET
    identifier: msgspec.Raw | UnsetType = UNSET


_decode = msgspec.json.Decoder(_Observation).decode
_MS_OF_DATETIME: dict[tzinfo | None, dict[str, int]] = {}  # vitals of one minute share a time
_DATETIME_CACHE_LIMIT = 50_000

# What ``fast_parse`` returns: key, version, status, the readings as store rows
# (``medsleep.store.tables.READING_ROW`` order), the resource's original bytes and its
# search tokens (``medsleep.store.search_tokens.tokens_of``).
FastResult = tuple[str, str, str, tuple[tuple[object, ...], ...], bytes, tuple[Token, ...]]
_TOKENS_OF_CATEGORY: dict[bytes, tuple[Token, ...]] = {}  # a source sends few categories


def _shape_of(byte: int) -> int:
    # digits -> "0", e/E -> "e", signs -> "s", "." -> ".", what may stand either side of a
    # JSON number (":,[]{}" and whitespace) -> "d", any other byte -> "x"
    if 48 <= byte <= 57:
        return ord("0")
    for chars, shape in ((b"eE", "e"), (b"+-", "s"), (b".", "."), (b":,[]{} \t\r\n", "d")):
        if byte in chars:
            return ord(shape)
    return ord("x")


_NUMBER_SHAPE = bytes(_shape_of(b) for b in range(256))
_BIG_EXPONENT = re.compile(rb"0es?000")  # measured faster than two substring tests
# A JSON number stands between delimiters: hex ids ("a3e4000b-...", "urn:uuid:12e45678-...")
# have the shape of a big exponent without being one.
_BIG_EXPONENT_NUMBER = re.compile(rb"ds?0+(?:\.0+)?es?000+(?:d|$)")
_LONG_DIGIT_RUN = b"0" * 200


class _Declined(Exception):
    """Not the common shape: the general path decides."""


def fast_parse(
    raw: bytes,
    default_tz: tzinfo | None,
    numbers_checked: bool = False,
    subject_target: str | None = None,
) -> FastResult | None:
    """The parse of ``raw`` if it has the common shape and breaks no rule, else None.

    ``numbers_checked``: the caller has already found that no number in ``raw`` can
    overflow (``numbers_may_overflow`` over a whole chunk). ``subject_target``: what a
    ``urn:uuid`` subject resolves to inside its Bundle (``Patient/x``), if anything.
    """
    try:
        obs = _decode(raw)
        raw.decode()  # msgspec does not check the UTF-8 of fields it skips
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None
    except RecursionError:  # msgspec's depth guard; orjson's (1024) then names the error
        return None
    if obs.resourceType != "Observation" or obs.status not in _PLAIN_STATUSES:
        return None
    meta = obs.meta
    if meta is not UNSET and meta.tag is not UNSET and any(map(_is_summary_tag, meta.tag)):
        return None  # one of medsleep's exported summaries: the general path skips it
    if obs.interpretation is not UNSET or obs.referenceRange is not UNSET:
        return None  # the source judges the value itself: the general path stores how
    if not numbers_checked and numbers_may_overflow(raw):
        return None
    version = meta.versionId or meta.lastUpdated if meta is not UNSET else None
    if not version:  # what the general path goes by too (parse.resource_identity)
        try:
            version = content_digest(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return None  # e.g. a lone surrogate msgspec lets through: the general path names it
    try:
        patient = _patient_of(obs.subject, subject_target)
        effective = _effective_ms(obs.effectiveDateTime, default_tz)
        key = f"Observation/{check_id(obs.id, 'id')}"
        status = obs.status
        main_coding = _pick_coding(obs.code)  # checked even when only components count
        main = _numeric(obs.valueQuantity, obs.valueInteger)
        components = obs.component
        if main is None and (components is UNSET or not components):
            return None
        # what every reading of the resource shares: (patient, effective), (key, version), tail
        shared = (patient, effective, key, version, status)
        readings: list[tuple[object, ...]] = []
        if main is not None:
            readings.append(_reading(shared, main_coding, main, MAIN_VALUE))
        if components is not UNSET:
            for index, component in enumerate(components):
                value = _numeric(component.valueQuantity, component.valueInteger)
                if value is None or component.interpretation is not UNSET:
                    return None
                if component.referenceRange is not UNSET:
                    return None
                readings.append(_reading(shared, _pick_coding(component.code), value, index))
    except (_Declined, DatatypeError, ResourceRejected, _NoPatient, UnitError):
        return None
    return key, version, status, tuple(readings), raw, _tokens(obs)


def _tokens(obs: _Observation) -> tuple[Token, ...]:
    """``tokens_of`` the resource, from its category and identifier as they came in."""
    if obs.identifier is not UNSET:  # identifiers differ from resource to resource
        found = {"identifier": orjson.loads(bytes(obs.identifier))}
        if obs.category is not UNSET:
            found["category"] = orjson.loads(bytes(obs.category))
        return tokens_of(found)
    if obs.category is UNSET:
        return ()
    raw = bytes(obs.category)
    known = _TOKENS_OF_CATEGORY.get(raw)
    if known is None:
        known = tokens_of({"category": orjson.loads(raw)})
        if len(_TOKENS_OF_CATEGORY) < _DATETIME_CACHE_LIMIT:
            _TOKENS_OF_CATEGORY[raw] = known
    return known


def _is_summary_tag(tag: _Coding) -> bool:
    return tag.system == TAG_SYSTEM and tag.code == SUMMARY_TAG["code"]


def numbers_may_overflow(raw: bytes) -> bool:
    """Whether some number in ``raw`` (one document, or many joined by newlines) might
    exceed a double.

    The general path (orjson) rejects such a document; msgspec does not look at numbers in
    fields it skips. Overflow needs an exponent of three digits or a run of 200+ digits; a
    number stands between delimiters, so hex ids and uuids do not count. A false alarm
    (``":1e234,"`` inside a string) only sends records down the general path.
    Ingest asks once per chunk, all records joined: a scan of a few MB costs far less than
    one call per record, and only a chunk that raises the alarm is checked record by record.
    """
    shape = raw.translate(_NUMBER_SHAPE)
    if _LONG_DIGIT_RUN in shape:
        return True
    # the loose pattern first: rarely found, and a plain scan, where the strict one would
    # stop at every delimiter
    return _BIG_EXPONENT.search(shape) is not None and (
        _BIG_EXPONENT_NUMBER.search(shape) is not None
    )


def _patient_of(subject: _Reference, target: str | None) -> str:
    ref = subject.reference
    if ref is UNSET:
        raise _Declined
    known = _PATIENT_OF_REFERENCE.get(ref)
    if known is not None:
        return known
    return _patient({"reference": ref}, (lambda _ref: target) if target else None)


def _effective_ms(text: str, default_tz: tzinfo | None) -> int:
    cache = _MS_OF_DATETIME.setdefault(default_tz, {})
    known = cache.get(text)
    if known is None:
        known = _parse_datetime_ms(text, "effectiveDateTime", default_tz)
        if len(cache) >= _DATETIME_CACHE_LIMIT:
            cache.clear()
        cache[text] = known
    return known


def _numeric(quantity: _Quantity | UnsetType, integer: int | UnsetType) -> tuple[float, str] | None:
    if quantity is not UNSET:
        raw = quantity.value
        if raw is UNSET or quantity.comparator is not UNSET:
            return None
        value = float(raw)
        if not math.isfinite(value):
            raise _Declined
        unit = quantity.code or quantity.unit or ""
        if unit and unit not in VALID_CODES:
            check_code(unit, "valueQuantity.code")
        return value, unit
    if integer is not UNSET:
        return float(integer), "1"
    return None


def _reading(
    shared: tuple[str, int, str, str, str],
    coding: tuple[str, str] | None,
    found: tuple[float, str],
    part: int,
) -> tuple[object, ...]:
    """One store row (``READING_ROW`` order)."""
    if coding is None:
        raise _Declined  # uncoded: the general path names the reason
    patient, effective, key, version, status = shared
    system, code = coding
    orig_value, orig_unit = found
    value, unit = to_canonical(code, orig_value, orig_unit)
    return (
        patient,
        system,
        code,
        effective,
        value,
        unit,
        orig_value,
        orig_unit,
        key,
        version,
        part,
        status,
        "",  # interpretation and reference range: shapes that carry them decline
        "",
    )


def _pick_coding(concept: _Concept) -> tuple[str, str] | None:
    chosen = None
    if concept.coding is not UNSET:
        for coding in concept.coding:
            if coding.code is UNSET:
                continue
            if coding.system == LOINC:
                chosen = coding
                break
            # A device (MDC) code beats any other system; the first coding beats the rest.
            if chosen is None or (coding.system == MDC and chosen.system != MDC):
                chosen = coding
    if chosen is None:
        return None
    code = chosen.code
    assert isinstance(code, str)
    if code not in VALID_CODES:
        check_code(code, "code.coding.code")
    return chosen.system or "", code
