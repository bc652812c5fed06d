"""Turn one FHIR Observation (a parsed JSON dict) into plain readings.

This is the fast path: each field medsleep stores is checked against FHIR's datatype rules
(see ``datatypes``) without building a full fhir.resources model; ``validate_resource``
does the full model validation for ``--strict``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import Any, NamedTuple

import orjson

from medsleep.fhir.build import is_summary
from medsleep.fhir.datatypes import (
    VALID_CODES,
    DatatypeError,
    check_code,
    check_decimal,
    check_id,
    parse_datetime_ms,
)
from medsleep.fhir.judgement import interpretation_codes, reference_range
from medsleep.fhir.units import LOINC, MDC, UnitError, to_canonical
from medsleep.fhir.validation import model_error

STATUSES = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)
MAIN_VALUE = -1  # ``part`` of a reading taken from value[x]; components use their index

Resolver = Callable[[str], str | None]


class ResourceRejected(ValueError):
    """An Observation that breaks FHIR rules: it goes to quarantine with this message."""


class ParsedReading(NamedTuple):
    """One numeric value (a NamedTuple: cheap to pickle between processes)."""

    patient: str
    code_system: str
    code: str
    effective_ms: int
    value: float
    unit: str
    orig_value: float
    orig_unit: str
    part: int
    interpretation: str = ""  # the source's own judgement (see fhir.judgement)
    reference_range: str = ""


class ParseOutcome(NamedTuple):
    """What one Observation yields: readings, or the reason it yields none."""

    resource_key: str
    version: str
    status: str
    readings: tuple[ParsedReading, ...]
    skipped: str | None = None

    @property
    def retracts(self) -> bool:
        return self.status == "entered-in-error"


def content_digest(resource: Mapping[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()


def resource_identity(resource: Mapping[str, Any], full_url: str | None = None) -> tuple[str, str]:
    """(key, version) that identify a resource version across inputs, for dedupe."""
    rid = resource.get("id")
    meta = resource.get("meta")
    version = None
    if isinstance(meta, dict):
        version = meta.get("versionId") or meta.get("lastUpdated")
    if rid is not None:
        key = f"Observation/{check_id(rid, 'id')}"
    elif full_url:
        key = full_url
    else:
        digest = content_digest(resource)
        return f"urn:sha1:{digest}", digest
    return key, str(version) if version else content_digest(resource)


def _field(part: int) -> str:
    # Error messages only: formatting a path for every value costs more than the checks.
    return "code" if part == MAIN_VALUE else f"component[{part}].code"


def _pick_coding(concept: object, part: int) -> tuple[str, str] | None:
    if not isinstance(concept, dict):
        raise ResourceRejected(f"{_field(part)} must be a CodeableConcept")
    codings = concept.get("coding") or []
    if not isinstance(codings, list):
        raise ResourceRejected(f"{_field(part)}.coding must be a list")
    chosen = None
    for coding in codings:
        if not isinstance(coding, dict) or "code" not in coding:
            continue
        if coding.get("system") == LOINC:
            chosen = coding
            break
        # A device (MDC) code beats any other system; the first coding beats the rest.
        if chosen is None or (coding.get("system") == MDC and chosen.get("system") != MDC):
            chosen = coding
    if chosen is None:
        return None
    system = chosen.get("system") or ""
    if not isinstance(system, str):
        raise ResourceRejected(f"{_field(part)}.coding.system must be a uri string")
    code = chosen["code"]
    if not (isinstance(code, str) and code in VALID_CODES):
        check_code(code, f"{_field(part)}.coding.code")
    return system, code


class _NoPatient(Exception):
    """The Observation is valid but has no patient we can file it under."""


_PATIENT_OF_REFERENCE: dict[str, str] = {}  # "Patient/x" -> "x", checked once each
_PATIENT_CACHE_LIMIT = 100_000


def _patient(subject: object, resolve: Resolver | None) -> str:
    if type(subject) is dict:
        known = _PATIENT_OF_REFERENCE.get(subject.get("reference"))  # type: ignore[arg-type]
        if known is not None:
            return known
    if subject is None:
        raise _NoPatient("no subject")
    if not isinstance(subject, dict):
        raise ResourceRejected("subject must be a Reference")
    ref = subject.get("reference")
    if ref is None:
        raise _NoPatient("subject without a reference")
    if isinstance(ref, str) and ref.startswith("#"):
        raise _NoPatient("subject is a contained resource")
    if not isinstance(ref, str) or not ref or ref != ref.strip():
        raise ResourceRejected(f"subject.reference {ref!r} is not a valid reference")
    if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
        target = resolve(ref) if resolve else None
        if target is None:
            raise ResourceRejected(f"subject.reference {ref} does not resolve inside its Bundle")
        ref = target
    parts = ref.rstrip("/").split("/")
    if len(parts) < 2:
        raise ResourceRejected(f"subject.reference {ref!r} is not Type/id")
    rtype, rid = parts[-2], parts[-1]
    if rtype != "Patient":
        raise _NoPatient("subject is not a Patient")
    patient = check_id(rid, "subject.reference id")
    original = subject.get("reference")
    if original == ref and len(_PATIENT_OF_REFERENCE) < _PATIENT_CACHE_LIMIT:
        _PATIENT_OF_REFERENCE[ref] = patient
    return patient


def _effective_ms(resource: Mapping[str, Any], default_tz: tzinfo | None) -> int | None:
    for field in ("effectiveDateTime", "effectiveInstant"):
        if field in resource:
            return parse_datetime_ms(resource[field], field, default_tz)
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        for field in ("start", "end"):
            if field in period:
                return parse_datetime_ms(period[field], f"effectivePeriod.{field}", default_tz)
    return None


def _numeric(holder: Mapping[str, Any], field: str) -> tuple[float, str] | str:
    """(value, unit) of a holder's value[x], or the reason it has no numeric value."""
    if "valueQuantity" in holder:
        qty = holder["valueQuantity"]
        if not isinstance(qty, dict):
            raise ResourceRejected(f"{field}.valueQuantity must be a Quantity")
        if "value" not in qty:
            return "quantity without value"
        if "comparator" in qty:
            return f"censored value (comparator {qty['comparator']})"
        raw = qty["value"]
        # bool is an int subclass but never a decimal: test the exact types first
        value = (
            float(raw)
            if type(raw) in (int, float)
            else check_decimal(raw, f"{field}.valueQuantity.value")
        )
        unit = qty.get("code") or qty.get("unit") or ""
        if unit and not (isinstance(unit, str) and unit in VALID_CODES):
            check_code(unit, f"{field}.valueQuantity.code")
        return value, unit
    if "valueInteger" in holder:
        raw = holder["valueInteger"]
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ResourceRejected(f"{field}.valueInteger {raw!r} is not a FHIR integer")
        return float(raw), "1"
    if "valueSampledData" in holder:
        return "sampled data (waveform)"
    if "dataAbsentReason" in holder:
        return "data absent"
    if any(key.startswith("value") for key in holder):
        return "non-numeric value"
    return "no value"


def parse_observation(
    resource: Mapping[str, Any],
    *,
    resolve: Resolver | None = None,
    full_url: str | None = None,
    default_tz: tzinfo | None = None,
) -> ParseOutcome:
    """Readings of one Observation; raises ResourceRejected when it breaks FHIR rules.

    >>> obs = {"resourceType": "Observation", "id": "hr", "status": "final",
    ...        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    ...        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-01T00:00:00Z",
    ...        "valueQuantity": {"value": 44, "code": "/min"}}
    >>> parse_observation(obs).readings[0].value
    44.0
    """
    try:
        return _parse(resource, resolve, full_url, default_tz)
    except DatatypeError as exc:
        raise ResourceRejected(str(exc)) from exc


def _parse(
    resource: Mapping[str, Any],
    resolve: Resolver | None,
    full_url: str | None,
    default_tz: tzinfo | None,
) -> ParseOutcome:
    key, version = resource_identity(resource, full_url)
    status = resource.get("status")
    if status not in STATUSES:
        raise ResourceRejected(f"status {status!r} is not an Observation status")

    def outcome(readings: tuple[ParsedReading, ...], skipped: str | None) -> ParseOutcome:
        return ParseOutcome(key, version, str(status), readings, skipped)

    if status == "entered-in-error":
        return outcome((), "entered-in-error")
    if status == "cancelled":
        return outcome((), "cancelled")
    if is_summary(resource):  # medsleep's own exported statistics, not a measurement
        return outcome((), "medsleep summary")
    if "code" not in resource:
        raise ResourceRejected("code is required")
    main_code = _pick_coding(resource["code"], MAIN_VALUE)
    try:
        patient = _patient(resource.get("subject"), resolve)
    except _NoPatient as exc:
        return outcome((), str(exc))
    effective = _effective_ms(resource, default_tz)

    candidates: list[tuple[tuple[str, str] | None, Mapping[str, Any], str, int]] = [
        (main_code, resource, "value", MAIN_VALUE)
    ]
    components = resource.get("component") or []
    if not isinstance(components, list):
        raise ResourceRejected("component must be a list")
    for index, component in enumerate(components):
        if not isinstance(component, dict) or "code" not in component:
            raise ResourceRejected(f"component[{index}] must have a code")
        candidates.append((_pick_coding(component["code"], index), component, "", index))

    readings: list[ParsedReading] = []
    reasons: list[str] = []
    for coding, holder, field, part in candidates:
        found = _numeric(holder, field or f"component[{part}]")
        if isinstance(found, str):
            if part != MAIN_VALUE or not components or found != "no value":
                reasons.append(found)
            continue
        if coding is None:
            reasons.append("uncoded")
            continue
        if effective is None:
            reasons.append("no effective time")
            continue
        system, code = coding
        orig_value, orig_unit = found
        try:
            value, unit = to_canonical(code, orig_value, orig_unit)
        except UnitError as exc:
            raise ResourceRejected(f"{field or f'component[{part}]'}: {exc}") from exc
        where = field or f"component[{part}]"
        readings.append(
            ParsedReading(
                patient,
                system,
                code,
                effective,
                value,
                unit,
                orig_value,
                orig_unit,
                part,
                interpretation_codes(holder, where),
                reference_range(holder, where, code, orig_unit),
            )
        )
    if readings:
        return outcome(tuple(readings), None)
    if resource.get("hasMember") and reasons == ["no value"]:
        return outcome((), "panel (hasMember only)")
    return outcome((), reasons[0] if reasons else "no value")


def validate_resource(resource: Mapping[str, Any], fhir_version: str) -> None:
    """Full fhir.resources model validation (``--strict``); raises ResourceRejected."""
    error = model_error(_observation_model(fhir_version), resource)
    if error is not None:
        raise ResourceRejected(f"fhir.resources {fhir_version}: {error}")


def _observation_model(fhir_version: str) -> Any:
    if fhir_version in ("R4", "R4B"):
        # fhir.resources ships R4B, not R4; Observation is unchanged between them.
        from fhir.resources.R4B.observation import Observation as R4BObservation

        return R4BObservation
    if fhir_version == "R5":
        from fhir.resources.observation import Observation as R5Observation

        return R5Observation
    raise ValueError(f"unknown FHIR version {fhir_version!r} (R4, R4B or R5)")
