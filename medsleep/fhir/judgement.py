"""The source's own judgement of a value: ``interpretation`` codes and ``referenceRange``.

An Observation (and each of its components) may say itself that a value is abnormal
(``interpretation``: H, L, HH, LL, A, AA, ... from the v3 ObservationInterpretation code system)
and give the range it considers normal (``referenceRange.low`` / ``.high``). medsleep stores both
with the reading: the codes space-separated, the range as ``"low..high"`` in the reading's
canonical unit (an open side is empty; ``detect.source`` reads it back). Malformed fields raise
DatatypeError (the record goes to quarantine with that message).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medsleep.fhir.datatypes import VALID_CODES, DatatypeError, check_code, check_decimal
from medsleep.fhir.units import UnitError, to_canonical


def interpretation_codes(holder: Mapping[str, Any], field: str) -> str:
    """The interpretation codes of ``holder`` (an Observation or component), space-separated."""
    concepts = holder.get("interpretation")
    if concepts is None:
        return ""
    if not isinstance(concepts, list):
        raise DatatypeError(f"{field}.interpretation must be a list of CodeableConcept")
    codes: list[str] = []
    for i, concept in enumerate(concepts):
        codings = concept.get("coding") if isinstance(concept, dict) else None
        if not isinstance(codings, list):
            raise DatatypeError(f"{field}.interpretation[{i}] must be a CodeableConcept")
        for coding in codings:
            code = coding.get("code") if isinstance(coding, dict) else None
            if code is None:
                continue
            if not (isinstance(code, str) and code in VALID_CODES):
                check_code(code, f"{field}.interpretation[{i}].coding.code")
            if code not in codes:
                codes.append(code)
    return " ".join(codes)


def reference_range(holder: Mapping[str, Any], field: str, code: str, unit: str) -> str:
    """The first ``referenceRange`` of ``holder`` with a low or high bound, converted to the
    canonical unit of ``code`` (bounds without a unit are in the value's ``unit``)."""
    ranges = holder.get("referenceRange")
    if ranges is None:
        return ""
    if not isinstance(ranges, list):
        raise DatatypeError(f"{field}.referenceRange must be a list")
    for i, item in enumerate(ranges):
        if not isinstance(item, dict):
            raise DatatypeError(f"{field}.referenceRange[{i}] must be an element")
        low = _bound(item.get("low"), f"{field}.referenceRange[{i}].low", code, unit)
        high = _bound(item.get("high"), f"{field}.referenceRange[{i}].high", code, unit)
        if low or high:
            return f"{low}..{high}"
    return ""


def _bound(quantity: object, field: str, code: str, unit: str) -> str:
    if quantity is None:
        return ""
    if not isinstance(quantity, dict):
        raise DatatypeError(f"{field} must be a Quantity")
    if "value" not in quantity:
        return ""
    raw = quantity["value"]
    value = float(raw) if type(raw) in (int, float) else check_decimal(raw, f"{field}.value")
    own = quantity.get("code") or quantity.get("unit") or unit
    if not isinstance(own, str):
        raise DatatypeError(f"{field}.code must be a code")
    try:
        converted, _ = to_canonical(code, value, own)
    except UnitError as exc:
        raise DatatypeError(f"{field}: {exc}") from exc
    return repr(converted)
