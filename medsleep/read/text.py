"""Words for the dashboard: vital names, display units, local times, why a reading was kept.

Pure functions over values the views read (no database), so the texts are easy to test.
"""

from __future__ import annotations

import bisect
import math
from datetime import datetime, tzinfo

from medsleep.fhir.units import CATALOGUE
from medsleep.policy import CodePolicy, Policy
from medsleep.timefmt import iso, ms_to_datetime

SHORT_NAMES = {
    "8867-4": "HR",
    "9279-1": "RR",
    "59408-5": "SpO2",
    "2708-6": "SaO2",
    "8480-6": "SBP",
    "8462-4": "DBP",
    "8310-5": "Temp",
}
"""Bedside abbreviations of the vital signs; other codes use the policy's name."""

DISPLAY_UNITS = {"mm[Hg]": "mmHg", "Cel": "°C", "[degF]": "°F", "1": ""}
"""UCUM codes as people write them; others are shown as they are."""

KIND_ORDER = ("rule", "detector", "artifact", "context", "sparse")
"""Retention kinds, strongest first: a reading kept for several is shown as its strongest."""


def display_unit(unit: str) -> str:
    return DISPLAY_UNITS.get(unit, unit)


def vital_name(code: str, policy: Policy) -> str:
    """The policy's name of a code (``Heart rate``), or the code itself."""
    cp = policy.for_code(code)
    return cp.name if cp is not None else code


def is_lab(code: str, cp: CodePolicy) -> bool:
    """A laboratory result (shown as labelled points): the catalogue says so; an uncatalogued
    code with no NEWS2 bands is taken for one (the caller asks only of codes with critical
    limits). Diastolic BP has limits, no bands, and a reading a minute: 1,440 value labels a
    day made its chart the slowest of the page."""
    info = CATALOGUE.get(code)
    return info.kind == "lab" if info is not None else not cp.bands


def short_name(code: str, policy: Policy) -> str:
    return SHORT_NAMES.get(code) or vital_name(code, policy)


def parameter_name(parameter: str, policy: Policy) -> str:
    """A NEWS2 parameter's name: a code's short name, or that of the first code sharing it
    (``spo2`` -> ``SpO2``)."""
    if parameter in policy.codes:
        return short_name(parameter, policy)
    for code, cp in policy.codes.items():
        if cp.news2_parameter == parameter:
            return short_name(code, policy)
    return parameter


def format_value(value: float, unit: str = "") -> str:
    """``86 %``, ``38.6 °C``, ``128 /min``: at most four significant digits."""
    text = f"{value:.4g}" if math.isfinite(value) else str(value)
    shown = display_unit(unit)
    return f"{text} {shown}" if shown else text


def local_time(ms: int, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    return ms_to_datetime(ms).astimezone(tz).strftime(fmt)


def wall_clock(ms: int, tz: tzinfo) -> datetime:
    """The local wall-clock time of ``ms`` as a naive datetime (for charts on a UTC scale, so
    the browser's own time zone never shifts what the hospital's clock said)."""
    return ms_to_datetime(ms).astimezone(tz).replace(tzinfo=None)


def span_text(start_ms: int, end_ms: int, tz: tzinfo) -> str:
    """A dated local span: ``31 Jan 02:14–02:31``, or ``31 Jan 23:50–1 Feb 00:10``."""
    start = ms_to_datetime(start_ms).astimezone(tz)
    end = ms_to_datetime(end_ms).astimezone(tz)
    first = f"{start.day} {start:%b %H:%M}"
    if end.date() == start.date():
        return f"{first}–{end:%H:%M}"
    return f"{first}–{end.day} {end:%b %H:%M}"


def utc_text(ms: int) -> str:
    return iso(ms)


def band_text(value: float, bands: tuple[tuple[float, int], ...]) -> str:
    """The NEWS2 band a value falls in, as ``≤ 91``, ``> 20 and ≤ 24`` or ``> 130`` (the same
    search as ``medsleep.detect.rules.band_index``, for one value)."""
    i = min(bisect.bisect_left([upper for upper, _ in bands], value), len(bands) - 1)
    upper = bands[i][0]
    if i == 0:
        return f"≤ {upper:g}"
    lower = bands[i - 1][0]
    return f"> {lower:g}" if math.isinf(upper) else f"> {lower:g} and ≤ {upper:g}"


def normal_range(cp: CodePolicy | None) -> tuple[float, float] | None:
    """(low, high) outside which a value counts as abnormal: the NEWS2 score-0 band (low
    exclusive) or the critical range of a lab."""
    if cp is None:
        return None
    if cp.bands:
        scores = [score for _, score in cp.bands]
        normal = scores.index(min(scores))
        low = cp.bands[normal - 1][0] if normal > 0 else -math.inf
        return low, cp.bands[normal][0]
    return cp.critical


def describe_worst(code: str, value: float, policy: Policy) -> str:
    """``SpO2 down to 86 %``, ``HR up to 128 /min``, ``RR 18 /min``."""
    cp = policy.for_code(code)
    unit = cp.unit if cp is not None else ""
    name = short_name(code, policy)
    span = normal_range(cp)
    if span is not None and value <= span[0]:
        return f"{name} down to {format_value(value, unit)}"
    if span is not None and value > span[1]:
        return f"{name} up to {format_value(value, unit)}"
    return f"{name} {format_value(value, unit)}"


def describe_episode(
    start_ms: int,
    end_ms: int,
    worst: dict[str, float],
    peak: int | None,
    policy: Policy,
    tz: tzinfo,
) -> str:
    """``02:14–02:31 SpO2 down to 86 %, HR up to 128 /min, NEWS2 7`` (local clock)."""
    order = {code: i for i, code in enumerate(policy.codes)}
    parts = [
        describe_worst(code, value, policy)
        for code, value in sorted(worst.items(), key=lambda kv: order.get(kv[0], len(order)))
    ]
    if peak is not None:
        parts.append(f"NEWS2 {peak}")
    span = f"{local_time(start_ms, tz, '%H:%M')}–{local_time(end_ms, tz, '%H:%M')}"
    return f"{span} {', '.join(parts)}"
