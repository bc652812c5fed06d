"""The catalogue of series medsleep knows, and UCUM unit conversion to a canonical unit.

Only conversions between units of the same kind are done (temperature, mass, length, pressure,
concentration of one analyte); an unknown unit for a catalogued code is an error, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from medsleep.policy import LOINC, MDC, load_catalogue

UCUM = "http://unitsofmeasure.org"
__all__ = ["CATALOGUE", "LOINC", "MDC", "UCUM", "SeriesInfo", "UnitError", "to_canonical"]


@dataclass(frozen=True)
class SeriesInfo:
    code: str
    name: str
    unit: str  # canonical UCUM code
    kind: str  # "vital" or "lab" or "body"
    system: str = LOINC
    parameter: str = ""


CATALOGUE: dict[str, SeriesInfo] = {
    code: SeriesInfo(code, p.name, p.unit, p.kind, system, p.id)
    for p in load_catalogue()
    for system, code in p.codes
}
"""Every catalogued code (LOINC and IEEE 11073 MDC), from ``fhir/catalogue.toml``."""

_Convert = Callable[[float], float]


def _scale(factor: float) -> _Convert:
    return lambda value: value * factor


_IDENTITY: _Convert = _scale(1.0)

# (from unit, to unit) -> conversion. Units are UCUM codes; a few common display spellings
# that monitors send instead of codes are mapped in _ALIASES first.
_CONVERSIONS: dict[tuple[str, str], _Convert] = {
    ("[degF]", "Cel"): lambda f: (f - 32.0) * 5.0 / 9.0,
    ("K", "Cel"): lambda k: k - 273.15,
    ("[lb_av]", "kg"): _scale(0.45359237),
    ("g", "kg"): _scale(0.001),
    ("[oz_av]", "kg"): _scale(0.028349523125),
    ("[in_i]", "cm"): _scale(2.54),
    ("m", "cm"): _scale(100.0),
    ("mm", "cm"): _scale(0.1),
    ("kPa", "mm[Hg]"): _scale(7.50061683),
    ("/s", "/min"): _scale(60.0),
    ("{beats}/min", "/min"): _IDENTITY,
    ("{breaths}/min", "/min"): _IDENTITY,
    ("mEq/L", "mmol/L"): _IDENTITY,  # monovalent ions (K+, Na+)
    ("mmol/L:glucose", "mg/dL"): _scale(18.0156),
    ("mmol/L:calcium", "mg/dL"): _scale(4.008),
    ("mg/dL:calcium", "mmol/L"): _scale(1 / 4.008),
    ("kg/m^2", "kg/m2"): _IDENTITY,
    ("mmol/L:magnesium", "mg/dL"): _scale(2.4305),
    ("mmol/L:phosphate", "mg/dL"): _scale(3.0974),
    ("umol/L:creatinine", "mg/dL"): _scale(1 / 88.42),
    ("mmol/L:urea_nitrogen", "mg/dL"): _scale(2.8014),
    ("mg/dL:lactate", "mmol/L"): _scale(1 / 9.008),
    ("g/L", "g/dL"): _scale(0.1),
    ("ng/L", "ng/mL"): _scale(0.001),
    ("ug/L", "ng/mL"): _IDENTITY,
    ("10*9/L", "10*3/uL"): _IDENTITY,
    ("L/L", "%"): _scale(100.0),
    ("mmol/mol:hba1c", "%"): lambda ifcc: 0.09148 * ifcc + 2.152,  # IFCC -> NGSP master equation
}

_ALIASES = {
    "degF": "[degF]",
    "°F": "[degF]",
    "F": "[degF]",
    "degC": "Cel",
    "°C": "Cel",
    "C": "Cel",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "in": "[in_i]",
    "mmHg": "mm[Hg]",
    "bpm": "/min",
    "beats/min": "/min",
    "breaths/min": "/min",
    "min-1": "/min",
    "1/min": "/min",
    "pH": "[pH]",
}

# Conversions that depend on the substance (molar mass), by catalogue parameter.
_ANALYTE = {
    "glucose": "glucose",
    "calcium": "calcium",
    "calcium_ionized": "calcium",
    "magnesium": "magnesium",
    "phosphate": "phosphate",
    "creatinine": "creatinine",
    "urea_nitrogen": "urea_nitrogen",
    "lactate": "lactate",
    "hba1c": "hba1c",
}


class UnitError(ValueError):
    """A unit that cannot be converted to the code's canonical unit."""


# The largest magnitude accepted for a value, as sent and after conversion. Far above any
# measurement (cell counts per litre are ~1e12), and low enough that sums and squares of
# millions of values stay finite in float64.
MAX_ABS_VALUE = 1e15


def _out_of_range(what: str) -> UnitError:
    return UnitError(
        f"{what} is outside the accepted value range [-{MAX_ABS_VALUE:g}, {MAX_ABS_VALUE:g}]"
    )


def to_canonical(code: str, value: float, unit: str) -> tuple[float, str]:
    """Convert ``value`` in ``unit`` to the canonical unit of ``code``.

    Codes outside the catalogue keep their unit unchanged; a missing unit on a catalogued
    code means its canonical unit.

    >>> value, unit = to_canonical("29463-7", 185, "[lb_av]")
    >>> round(value, 2), unit
    (83.91, 'kg')
    """
    if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:  # also true for NaN
        raise _out_of_range(f"{value!r} {unit}".rstrip())
    info = CATALOGUE.get(code)
    if info is None:
        return value, unit
    unit = _ALIASES.get(unit, unit)
    # A Quantity with no unit at all (seen in Synthea BP components) is read as the code's
    # canonical unit; the reading keeps orig_unit "" so the assumption stays visible.
    if unit == info.unit or not unit:
        return value, info.unit
    convert = _CONVERSIONS.get((unit, info.unit))
    analyte = _ANALYTE.get(info.parameter)
    if convert is None and analyte is not None:
        convert = _CONVERSIONS.get((f"{unit}:{analyte}", info.unit))
    if convert is None:
        raise UnitError(f"unit {unit!r} cannot be converted to {info.unit!r} for {code}")
    converted = convert(value)
    if not -MAX_ABS_VALUE <= converted <= MAX_ABS_VALUE:
        raise _out_of_range(f"{value!r} {unit} in {info.unit} ({converted!r})")
    return converted, info.unit
