"""One labelled recording re-expressed the ways real sources differ, its labels carried over.
Pure: Observation dicts and ``Labels`` in, Observation dicts and ``Labels`` out.

Consolidation must hold for the *kind* of data, not for one recording's codes, units and
clock. Each variant changes one thing a real source changes and nothing else:

- **codes** — the same vital under another LOINC code of its catalogue parameter
  (``loinc``), under the IEEE 11073 MDC code a monitor sends (``mdc``), or under a local code
  no catalogue knows (``uncatalogued``: judged statistically only);
- **timing** — timestamps jittered irregularly (``jitter``), every other reading dropped
  (``half-rate``), a reading interpolated between each pair (``double-rate``), an hour's gap
  in the middle (``gap``);
- **units** — the UCUM spelling or unit the catalogue converts (``units``: ``{beats}/min``,
  ``{breaths}/min``, ``kPa``);
- **the source's own flags** — labelled readings carry ``interpretation`` H or L, the others N
  (``flags``).

Labels follow the readings: a dropped reading is never a labelled one (except inside an
``event``, where one kept reading is enough and the event is thinned like the rest); an
interpolated reading between two readings of an event belongs to it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medsleep.evaluate.scoring import Labels
from medsleep.policy import LOINC, MDC, load_catalogue
from medsleep.timefmt import iso, parse_iso_ms

Resource = dict[str, Any]

# The same vital under other codes of its catalogue parameter (checked against the catalogue
# by ``check_code_maps``). LOINC: beat-to-beat HR by EKG, HR by palpation, SpO2 in arterial
# blood, pressures by the non-invasive or invasive method. MDC: what a bedside monitor sends
# for the LOINC code's measurement (ECG heart rate, pulse-oximetry pulse rate, SpO2,
# respiratory rate, non-invasive pressures, arterial mean pressure).
LOINC_ALTERNATIVE: dict[str, str] = {
    "8867-4": "76282-3",
    "8889-8": "8893-0",
    "59408-5": "2708-6",
    "8480-6": "76534-7",
    "8462-4": "76535-4",
    "8478-0": "76214-6",
}
MDC_EQUIVALENT: dict[str, str] = {
    "8867-4": "147842",
    "8889-8": "149530",
    "9279-1": "151562",
    "59408-5": "150456",
    "8480-6": "150021",
    "8462-4": "150022",
    "8478-0": "150035",
}
UNCATALOGUED_SYSTEM = "urn:medsleep:variant-local"

# Unit spellings the catalogue converts to the canonical unit: (new unit, factor from the
# canonical unit to the new one, decimals a source would send).
UNIT_VARIANT: dict[str, tuple[str, float, int]] = {
    "heart_rate": ("{beats}/min", 1.0, 2),
    "respiratory_rate": ("{breaths}/min", 1.0, 2),
    "systolic": ("kPa", 1 / 7.50061683, 2),
    "diastolic": ("kPa", 1 / 7.50061683, 2),
    "mean_pressure": ("kPa", 1 / 7.50061683, 2),
}

GAP_MS = 3_600_000
JITTER_SHARE = 0.3
"""A jittered reading moves by up to this share of the interval to its nearer neighbour."""


@dataclass(frozen=True)
class Variant:
    name: str
    changes: str
    apply: Callable[[list[Resource], Labels, np.random.Generator], tuple[list[Resource], Labels]]


# --- the parts of an Observation a variant touches ---------------------------------------


def _holders(resource: Resource) -> list[dict[str, Any]]:
    """What carries a code and a value: each component, else the Observation itself."""
    components = resource.get("component")
    return list(components) if components else [resource]


def _codings(resource: Resource) -> Iterator[dict[str, Any]]:
    """The value-bearing codings."""
    for holder in _holders(resource):
        yield from holder["code"]["coding"]


def _quantities(resource: Resource) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(code, holder, valueQuantity) of each value of ``resource``."""
    for holder in _holders(resource):
        quantity = holder.get("valueQuantity")
        if isinstance(quantity, dict) and "value" in quantity:
            yield holder["code"]["coding"][0]["code"], holder, quantity


def _parameter_of() -> dict[str, str]:
    return {code: p.id for p in load_catalogue() for _, code in p.codes}


def check_code_maps() -> None:
    """Raise ValueError unless every mapped code is the same catalogue parameter's, in the
    right system."""
    by_code = {code: (p.id, system) for p in load_catalogue() for system, code in p.codes}
    for table, system in ((LOINC_ALTERNATIVE, LOINC), (MDC_EQUIVALENT, MDC)):
        for old, new in table.items():
            if by_code.get(new) != (by_code[old][0], system):
                raise ValueError(f"{old} -> {new} is not {by_code[old][0]} in {system}")


# --- time -----------------------------------------------------------------------------------


def _time_ms(resource: Resource) -> int:
    return parse_iso_ms(str(resource["effectiveDateTime"]))


def _set_time(resource: Resource, t_ms: int) -> None:
    resource["effectiveDateTime"] = iso(int(t_ms))


def _series_key(resource: Resource) -> tuple[str, str]:
    subject = str(resource.get("subject", {}).get("reference", ""))
    return subject, str(resource["code"]["coding"][0]["code"])


def _by_series(resources: Sequence[Resource]) -> dict[tuple[str, str], list[int]]:
    """Positions of each (patient, code) series' resources, in time order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(resources):
        groups.setdefault(_series_key(r), []).append(i)
    return {k: sorted(v, key=lambda i: _time_ms(resources[i])) for k, v in groups.items()}


# --- the variants --------------------------------------------------------------------------


def _recoded(table: Mapping[str, str], system: str) -> Callable[..., tuple[list[Resource], Labels]]:
    def apply(
        resources: list[Resource], labels: Labels, rng: np.random.Generator
    ) -> tuple[list[Resource], Labels]:
        out = copy.deepcopy(resources)
        for r in out:
            for coding in _codings(r):
                new = table.get(coding["code"])
                if new is not None:
                    coding.update(system=system, code=new)
                    coding.pop("display", None)
        return out, labels

    return apply


def _uncatalogued(
    resources: list[Resource], labels: Labels, rng: np.random.Generator
) -> tuple[list[Resource], Labels]:
    out = copy.deepcopy(resources)
    for r in out:
        for coding in _codings(r):
            coding.update(system=UNCATALOGUED_SYSTEM, code=f"local-{coding['code']}")
            coding.pop("display", None)
    return out, labels


def _jitter(
    resources: list[Resource], labels: Labels, rng: np.random.Generator
) -> tuple[list[Resource], Labels]:
    out = copy.deepcopy(resources)
    for positions in _by_series(out).values():
        t = np.array([_time_ms(out[i]) for i in positions], dtype=np.float64)
        if t.size < 2:
            continue
        gaps = np.diff(t)
        room = np.minimum(np.concatenate(([gaps[0]], gaps)), np.concatenate((gaps, [gaps[-1]])))
        moved = t + rng.uniform(-JITTER_SHARE, JITTER_SHARE, t.size) * room
        for i, when in zip(positions, np.maximum.accumulate(moved), strict=True):
            _set_time(out[i], int(when))
    return out, labels


def _half_rate(
    resources: list[Resource], labels: Labels, rng: np.random.Generator
) -> tuple[list[Resource], Labels]:
    dropped: set[int] = set()
    for positions in _by_series(resources).values():
        for k, i in enumerate(positions):
            if k % 2 == 1 and (labels.event or resources[i]["id"] not in labels.ids):
                dropped.add(i)
    out = [copy.deepcopy(r) for i, r in enumerate(resources) if i not in dropped]
    left = {str(r["id"]) for r in out}
    return out, Labels(frozenset(labels.ids & left), labels.event)


def _double_rate(
    resources: list[Resource], labels: Labels, rng: np.random.Generator
) -> tuple[list[Resource], Labels]:
    out = copy.deepcopy(resources)
    ids = set(labels.ids)
    for positions in _by_series(resources).values():
        for a, b in zip(positions, positions[1:], strict=False):
            first, second = resources[a], resources[b]
            mid = copy.deepcopy(first)
            mid["id"] = f"{first['id']}-i"
            _set_time(mid, (_time_ms(first) + _time_ms(second)) // 2)
            others = {code: q for code, _, q in _quantities(second)}
            for code, _, q in _quantities(mid):
                if code in others:
                    q["value"] = round((float(q["value"]) + float(others[code]["value"])) / 2, 2)
            out.append(mid)
            if labels.event and first["id"] in labels.ids and second["id"] in labels.ids:
                ids.add(mid["id"])
    out.sort(key=_time_ms)
    return out, Labels(frozenset(ids), labels.event)


def _gap(
    resources: list[Resource], labels: Labels, rng: np.random.Generator
) -> tuple[list[Resource], Labels]:
    out = copy.deepcopy(resources)
    times = [_time_ms(r) for r in out]
    middle = (min(times) + max(times)) // 2
    for r, t in zip(out, times, strict=True):
        if t > middle:
            _set_time(r, t + GAP_MS)
    return out, labels


def _units(
    resources: list[Resource], labels: Labels, rng: np.random.Generator
) -> tuple[list[Resource], Labels]:
    out = copy.deepcopy(resources)
    parameter_of = _parameter_of()
    for r in out:
        for code, _, q in _quantities(r):
            variant = UNIT_VARIANT.get(parameter_of.get(code, ""))
            if variant is None:
                continue
            unit, factor, decimals = variant
            q.update(value=round(float(q["value"]) * factor, decimals), unit=unit, code=unit)
    return out, labels


def _flags(
    resources: list[Resource], labels: Labels, rng: np.random.Generator
) -> tuple[list[Resource], Labels]:
    out = copy.deepcopy(resources)
    for positions in _by_series(out).values():
        values = [
            float(q["value"]) for i in positions for _, _, q in _quantities(out[i]) if q is not None
        ]
        centre = float(np.median(values)) if values else 0.0
        for i in positions:
            r = out[i]
            for _, holder, q in _quantities(r):
                if r["id"] in labels.ids:
                    code = "H" if float(q["value"]) >= centre else "L"
                else:
                    code = "N"
                holder["interpretation"] = [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                "code": code,
                            }
                        ]
                    }
                ]
    return out, labels


VARIANTS: tuple[Variant, ...] = (
    Variant("loinc", "another LOINC code of the parameter", _recoded(LOINC_ALTERNATIVE, LOINC)),
    Variant("mdc", "the monitor's IEEE 11073 MDC code", _recoded(MDC_EQUIVALENT, MDC)),
    Variant("uncatalogued", "a local code in no catalogue", _uncatalogued),
    Variant("jitter", "irregular timestamps", _jitter),
    Variant("half-rate", "every other reading dropped", _half_rate),
    Variant("double-rate", "a reading interpolated between each pair", _double_rate),
    Variant("gap", "an hour without readings in the middle", _gap),
    Variant("units", "{beats}/min, {breaths}/min, kPa", _units),
    Variant("flags", "labelled readings flagged H/L by the source, others N", _flags),
)
"""Every variant, in the order of the benchmark's table."""


def make_variant(
    name: str, resources: list[Resource], labels: Labels, seed: int = 11
) -> tuple[list[Resource], Labels]:
    """``resources`` and ``labels`` re-expressed as variant ``name`` (reproducible by seed)."""
    by_name = {v.name: v for v in VARIANTS}
    if name not in by_name:
        raise KeyError(f"unknown variant {name!r}; use one of: {', '.join(by_name)}")
    return by_name[name].apply(resources, labels, np.random.default_rng(seed))
