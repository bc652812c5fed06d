"""medsleep.evaluate.variants: each real recording re-expressed the ways real sources differ,
and consolidation judged on every variant as on the original (``quality.py --cases variants``).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from medsleep.evaluate.labels import load_labels
from medsleep.evaluate.scoring import Labels
from medsleep.evaluate.variants import (
    LOINC_ALTERNATIVE,
    MDC_EQUIVALENT,
    VARIANTS,
    check_code_maps,
    make_variant,
)
from medsleep.fhir.units import CATALOGUE, to_canonical
from medsleep.policy import load_policy
from tests.conftest import FIXTURES

REAL = FIXTURES / "real-labelled"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CASES = ("mitdb100", "mimic2a", "mimic2b", "ucr135")


def read(case: str) -> tuple[list[dict[str, Any]], Labels]:
    with gzip.open(REAL / f"{case}.ndjson.gz", "rt") as handle:
        resources = [json.loads(line) for line in handle]
    labels = load_labels(REAL / f"{case}.labels.json")
    assert isinstance(labels, Labels)
    return resources, labels


def values_of(resources: list[dict[str, Any]]) -> list[tuple[str, float, str]]:
    out = []
    for r in resources:
        for holder in r.get("component") or [r]:
            q = holder["valueQuantity"]
            out.append((holder["code"]["coding"][0]["code"], float(q["value"]), q["code"]))
    return out


def test_every_code_map_stays_in_its_catalogue_parameter() -> None:
    check_code_maps()
    for old, new in {**LOINC_ALTERNATIVE, **MDC_EQUIVALENT}.items():
        assert CATALOGUE[old].parameter == CATALOGUE[new].parameter


@pytest.mark.parametrize("variant", [v.name for v in VARIANTS])
def test_a_variant_changes_one_thing_and_carries_the_labels(variant: str) -> None:
    resources, labels = read("mimic2b")
    out, carried = make_variant(variant, resources, labels)
    assert out != resources
    assert carried.event == labels.event
    ids = {r["id"] for r in out}
    assert carried.ids <= ids  # every label names a resource of the variant
    if variant != "half-rate":
        assert labels.ids <= carried.ids
    assert make_variant(variant, resources, labels) == (out, carried)  # reproducible
    assert read("mimic2b")[0] == resources  # the input is not changed in place


def test_half_rate_never_drops_a_labelled_reading_and_halves_each_series() -> None:
    resources, labels = read("mitdb100")
    out, carried = make_variant("half-rate", resources, labels)
    assert carried.ids == labels.ids
    assert len(resources) // 2 <= len(out) <= len(resources) // 2 + len(labels.ids)


def test_double_rate_interpolates_between_each_pair_and_an_event_grows() -> None:
    resources, labels = read("ucr135")
    out, carried = make_variant("double-rate", resources, labels)
    assert len(out) == 2 * len(resources) - 1
    assert len(carried.ids) == 2 * len(labels.ids) - 1


def test_units_convert_back_to_the_same_canonical_values() -> None:
    resources, labels = read("mimic2a")
    out, _ = make_variant("units", resources, labels)
    before, after = values_of(resources), values_of(out)
    assert {u for _, _, u in after} >= {"kPa", "{beats}/min", "{breaths}/min"}
    for (code, value, unit), (_, v2, u2) in zip(before, after, strict=True):
        assert to_canonical(code, v2, u2)[0] == pytest.approx(
            to_canonical(code, value, unit)[0], abs=0.04
        )


def test_flags_mark_the_labelled_readings_abnormal_and_the_rest_normal() -> None:
    resources, labels = read("mimic2b")
    out, _ = make_variant("flags", resources, labels)
    for r in out:
        for holder in r.get("component") or [r]:
            code = holder["interpretation"][0]["coding"][0]["code"]
            assert (code in {"H", "L"}) == (r["id"] in labels.ids)


# --- consolidation on every variant ------------------------------------------------------


@pytest.fixture(scope="module")
def quality() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield __import__("quality")
    finally:
        sys.path.remove(str(BENCHMARKS))
        sys.modules.pop("quality", None)


@cache
def _scored(quality: ModuleType, case: str, variant: str) -> dict[str, Any]:
    row: dict[str, Any] = quality.variant_case(case, variant, load_policy(), "local")
    return row


# The NEWS2 cases label the readings in a NEWS2 score-3 band: under a code no catalogue knows
# no clinical rule applies, by definition, and statistics alone cannot know that a
# respiratory rate of 8 is critical for a patient breathing 12 a minute.
CLINICAL_LABELS = {"mimic2a", "mimic2b"}


@pytest.mark.slow
@pytest.mark.parametrize("variant", [v.name for v in VARIANTS])
@pytest.mark.parametrize("case", CASES)
def test_consolidation_holds_on_every_variant(quality: ModuleType, case: str, variant: str) -> None:
    original = _scored(quality, case, "original")
    row = _scored(quality, case, variant)
    verdict = quality.judged(row, original)
    if variant == "uncatalogued" and case in CLINICAL_LABELS:
        assert "compression" not in verdict, (row, original)  # the labels: see above
    else:
        assert verdict == "ok", (row, original)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_an_uncatalogued_code_is_judged_statistically(quality: ModuleType, case: str) -> None:
    row = _scored(quality, case, "uncatalogued")
    assert row["statistical"] >= 1
    assert row["labelled_kept"] > 0
