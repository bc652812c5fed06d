"""The FHIR builders: what a summary, its Provenance and an AuditEvent look like, and that
they validate with fhir.resources (R4B models) in every shape."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medsleep.fhir.build import (
    ArchiveFileFacts,
    AuditFacts,
    BuildError,
    RunFacts,
    SummaryFacts,
    Validator,
    audit_event,
    instant,
    is_summary,
    summary_observation,
    summary_provenance,
    validate,
)
from medsleep.timefmt import iso

RUN = RunFacts(7, "a" * 64, 1767657600000)
FILE = ArchiveFileFacts("2026/02/run-7-1.parquet", "b" * 64, 7)


def summary(**changes: Any) -> SummaryFacts:
    base = SummaryFacts(
        id=12,
        run_id=7,
        patient="icu-0001",
        code="8867-4",
        unit="/min",
        band="news2-0",
        bucket_start_ms=1767571200000,
        bucket_end_ms=1767574800000,
        n=58,
        min=61.0,
        max=84.0,
        mean=70.25,
        std=4.5,
        median=70.0,
        first_ms=1767571200000,
        last_ms=1767574740000,
    )
    return base._replace(**changes)


def components(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in resource["component"]}


def test_a_summary_is_a_tagged_observation_with_one_component_per_statistic() -> None:
    resource = summary_observation(summary(), RUN).resource
    validate(resource)
    assert is_summary(resource)
    assert resource["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
    ]
    assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
    assert resource["effectivePeriod"] == {
        "start": "2026-01-05T00:00:00.000Z",
        "end": "2026-01-05T00:59:00.000Z",
    }
    stats = components(resource)
    assert {k: v["value"] for k, v in stats.items()} == {
        "average": 70.25,
        "minimum": 61.0,
        "maximum": 84.0,
        "median": 70.0,
        "std-dev": 4.5,
        "count": 58,
    }
    assert stats["average"] == {
        "value": 70.25,
        "unit": "/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    assert "NEWS2 sub-score 0" in resource["note"][0]["text"]


def test_every_shape_validates() -> None:
    options = itertools.product(
        ["8867-4", "2823-3", "local-code"],  # vital, lab, outside the catalogue
        ["/min", ""],  # a unit, or none (Synthea BP components)
        [4.5, None],
        [RUN, None],
        ["news2-2", "artifact", ""],
    )
    for code, unit, std, run, band in options:
        facts = summary(code=code, unit=unit, std=std, band=band)
        validate(summary_observation(facts, run).resource)
        for files in ([], [FILE], [FILE, ArchiveFileFacts("x/y.parquet", None, None)]):
            validate(summary_provenance(facts, run, files).resource)


def test_a_code_outside_the_catalogue_keeps_no_guessed_system() -> None:
    resource = summary_observation(summary(code="local-code", unit=""), None).resource
    assert resource["code"] == {"coding": [{"code": "local-code"}], "text": "local-code"}
    assert "category" not in resource
    assert components(resource)["average"] == {"value": 70.25}


def test_the_artifact_band_says_it_is_no_clinical_value() -> None:
    resource = summary_observation(summary(band="artifact"), RUN).resource
    assert "not a clinical value" in resource["note"][0]["text"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mean": math.nan}, "finite"),
        ({"std": math.inf}, "finite"),
        ({"patient": "has space"}, "FHIR id"),
        ({"code": "two  spaces"}, "FHIR code"),
    ],
)
def test_values_that_cannot_go_into_fhir_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(BuildError, match=message):
        summary_observation(summary(**changes), RUN)


def test_provenance_links_run_policy_and_archive_file() -> None:
    resource = summary_provenance(summary(), RUN, [FILE]).resource
    validate(resource)
    assert resource["target"] == [{"reference": "Observation/medsleep-summary-12"}]
    assert resource["policy"] == ["urn:medsleep:policy:sha256:" + "a" * 64]
    assert resource["agent"][0]["who"]["identifier"] == {"system": "urn:medsleep:run", "value": "7"}
    assert [e["role"] for e in resource["entity"]] == ["source", "removal"]
    assert all(e["what"]["identifier"]["value"] == FILE.name for e in resource["entity"])
    assert "b" * 64 in resource["entity"][0]["what"]["display"]


@pytest.mark.parametrize(
    ("action", "patient", "outcome", "kind"),
    [
        ("consolidate.committed", None, "0", "consolidation"),
        ("consolidate.failed", None, "8", "consolidation"),
        ("restore", "icu-0001", "0", "110107"),
        ("export", None, "0", "110106"),
        ("purge", "icu-0002", "0", "purge"),
        ("hold.add", "free text patient", "0", "legal-hold"),
        ("dashboard.login", None, "0", "110114"),
        ("dashboard.login_failed", None, "4", "110114"),
        ("something.new", None, "0", "other"),
    ],
)
def test_audit_events_validate_and_keep_their_chain_link(
    action: str, patient: str | None, outcome: str, kind: str
) -> None:
    facts = AuditFacts(3, 1767657600000, "cli", action, '{"x":1}', "0" * 64, "f" * 64, patient, 7)
    resource = audit_event(facts).resource
    validate(resource)
    assert resource["outcome"] == outcome
    assert resource["type"]["code"] == kind
    assert resource["subtype"] == [{"system": "urn:medsleep:audit-action", "code": action}]
    details = {d["type"]: d["valueString"] for d in resource["entity"][0]["detail"]}
    assert details == {"seq": "3", "details": '{"x":1}', "prev_hash": "0" * 64, "hash": "f" * 64}


def test_the_validator_checks_each_shape_with_the_model_once() -> None:
    validator = Validator()
    for i in range(50):
        validator.check(summary_observation(summary(id=i, mean=60.0 + i), RUN))
    assert validator.model_checked == 1
    validator.check(summary_observation(summary(std=None), RUN))
    assert validator.model_checked == 2
    full = Validator(full=True)
    for i in range(3):
        full.check(summary_observation(summary(id=i), RUN))
    assert full.model_checked == 3


def test_a_broken_resource_does_not_validate() -> None:
    resource = summary_observation(summary(), RUN).resource
    broken = {**resource, "status": "no-such-status", "effectivePeriod": {"start": "yesterday"}}
    with pytest.raises(BuildError, match="Observation/medsleep-summary-12"):
        validate(broken)


@given(st.integers(min_value=-(10**12), max_value=253402300799999))
def test_instant_is_timefmt_iso_with_milliseconds(ms: int) -> None:
    text = iso(ms)
    assert instant(ms) == (text if "." in text else text.replace("Z", ".000Z"))


def test_a_summary_of_one_reading_states_no_standard_deviation() -> None:
    one = summary_observation(summary(n=1, std=0.0, min=70.0, max=70.0), RUN).resource
    many = summary_observation(summary(), RUN).resource
    assert "std-dev" not in components(one)
    assert components(one)["count"]["value"] == 1
    assert components(many)["std-dev"]["value"] == 4.5
