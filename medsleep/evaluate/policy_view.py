"""``medsleep policy show``: the policy in force, every code it judges, and where each
threshold comes from. Pure (reads the shipped catalogue's text for its cited sources).

``fhir/catalogue.toml`` cites a source per line (``# [NEWS2]``), on the comment lines just above
a key, or for a whole section (``# --- laboratory [LAB] ---``); its header explains each tag.
Plausible ranges without a tag are medsleep's own; a value the policy file changed is cited as
``policy``; a value the catalogue gives without a tag is ``uncited``. A section's tag cites
its reference and critical ranges only.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from importlib import resources
from typing import Any

from medsleep.policy import CATALOGUE_PATH, CodePolicy, Policy, load_catalogue

THRESHOLDS = ("bands", "plausible", "reference", "critical", "max_step", "max_rate")
_TAG = re.compile(r"\[([A-Z0-9]+)\]")
_KEY = re.compile(r"^(\w+)\s*=")
_LEGEND = re.compile(r"^#\s+\[([A-Z0-9]+)\]\s+(.*)$")
OWN, POLICY, UNCITED = "medsleep", "policy", "uncited"


def catalogue_text() -> str:
    return resources.files("medsleep").joinpath(CATALOGUE_PATH).read_text()


def catalogue_sources(text: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Per parameter id, the cited tag of each key; and each tag's citation from the header."""
    legend: dict[str, str] = {}
    cited: dict[str, dict[str, str]] = {}
    current = ""
    section_tag = ""
    pending: list[str] = []  # tags on the comment lines since the last key
    last_tag = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not cited and (match := _LEGEND.match(stripped)):
            last_tag = match.group(1)
            legend[last_tag] = match.group(2).strip()
            continue
        if not cited and last_tag and stripped.startswith("#     "):  # a citation's next line
            legend[last_tag] += " " + stripped.lstrip("# ").strip()
            continue
        if stripped.startswith("# ---"):
            tags = _TAG.findall(stripped)
            section_tag = tags[0] if tags else ""
            last_tag = ""
            continue
        if stripped.startswith("[parameter."):
            current = stripped.removeprefix("[parameter.").rstrip("]")
            cited[current] = {}
            pending = []
            last_tag = ""
            continue
        if stripped.startswith("#"):
            last_tag = ""
            pending += _TAG.findall(stripped)
            continue
        key = _KEY.match(stripped)
        if current and key:
            _, _, comment = stripped.partition("#")
            tags = _TAG.findall(comment) or pending or ([section_tag] if section_tag else [])
            if key.group(1) == "max_rate":  # cited with max_step, on the lines above both
                step = cited[current].get("max_step")
                tags = _TAG.findall(comment) or ([step] if step else [])
            elif key.group(1) not in ("reference", "critical"):  # a section cites only those
                tags = _TAG.findall(comment) or pending
            if tags:
                cited[current][key.group(1)] = tags[0]
            pending = []
    return cited, legend


def _plain(value: Any) -> Any:
    """Ranges and bands as JSON (infinity as a string: JSON has none)."""
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _thresholds(cp: CodePolicy) -> dict[str, Any]:
    return {
        "bands": _plain(cp.bands),
        "plausible": _plain(cp.plausible),
        "reference": _plain(cp.reference),
        "critical": _plain(cp.critical),
        "max_step": _plain(cp.max_step),
        "max_rate": _plain(cp.max_rate),
        "detector": cp.detector,
        "contamination": cp.contamination,
        "min_deviation_z": cp.min_deviation_z,
    }


def describe_policy(policy: Policy, source: str) -> dict[str, Any]:
    """The policy in force as one JSON-ready object: settings, parameters with their codes,
    thresholds and sources, codes only the policy names, and the citations."""
    cited, legend = catalogue_sources(catalogue_text())
    parameters = []
    catalogued: set[str] = set()
    overrides = []
    for p in load_catalogue():
        codes = [code for _, code in p.codes]
        catalogued.update(codes)
        first = policy.codes[codes[0]]
        row: dict[str, Any] = {
            "id": p.id,
            "name": first.name,
            "unit": p.unit,
            "kind": p.kind,
            "news2": p.news2,
            "codes": [{"system": system, "code": code} for system, code in p.codes],
            **_thresholds(first),
        }
        sources = {}
        for key in THRESHOLDS:
            value = getattr(first, key)
            if value != getattr(p, key):
                sources[key] = POLICY
            elif value in ((), None, math.inf):
                continue
            else:
                sources[key] = cited.get(p.id, {}).get(key, OWN if key == "plausible" else UNCITED)
        row["sources"] = sources
        parameters.append(row)
        base = {k: v for k, v in asdict(first).items() if k != "code"}
        for code in codes[1:]:
            other = policy.codes[code]
            if {k: v for k, v in asdict(other).items() if k != "code"} != base:
                overrides.append({"code": code, "parameter": p.id, **_thresholds(other)})
    own_codes = [
        {"code": code, "name": cp.name, "unit": cp.unit, **_thresholds(cp)}
        for code, cp in sorted(policy.codes.items())
        if code not in catalogued
    ]
    settings = asdict(policy)
    for key in ("codes", "statistical", "multivariate"):
        settings.pop(key)
    return {
        "policy": source,
        "digest": policy.digest,
        "settings": {k: v if isinstance(v, (int, float)) else str(v) for k, v in settings.items()},
        "multivariate": asdict(policy.multivariate),
        "statistical": _thresholds(policy.statistical),
        "parameters": parameters,
        "code_overrides": overrides,
        "policy_codes": own_codes,
        "sources": legend,
    }
