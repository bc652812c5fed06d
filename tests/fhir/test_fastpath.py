"""The typed fast path gives exactly what the general path gives, or declines.

Each input is parsed twice from its raw bytes: once as ingest does it (fast path first), once
with the fast path switched off. The two ``Parsed`` results must be identical, readings,
skip reasons and quarantine errors alike.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from medsleep.fhir.build import SUMMARY_TAG
from medsleep.fhir.fastpath import fast_parse, numbers_may_overflow
from medsleep.ingest.parsing import Parsed, ParseOptions, parse_chunk, parse_record
from medsleep.ingest.sources import InputRecord, read_document
from tests.conftest import SAMPLE, SPEC_EXAMPLES, SYNTHEA

OPTIONS = ParseOptions()
LOINC = "http://loinc.org"


def _both(raw: bytes, options: ParseOptions = OPTIONS) -> tuple[Parsed, Parsed]:
    record = InputRecord("test", "line 1", raw, nbytes=len(raw))
    fast = parse_record(record, options)
    with mock.patch("medsleep.ingest.parsing.fast_parse", return_value=None):
        general = parse_record(record, options)
    return fast, general


def _fixture_resources() -> Iterator[bytes]:
    for path in sorted(SPEC_EXAMPLES.glob("*.json")) + sorted(SYNTHEA.glob("*.json")):
        for record in read_document(path.name, path.read_bytes(), ""):
            yield record.raw
    with gzip.open(SAMPLE / "observations.ndjson.gz") as lines:
        for number, line in enumerate(lines):
            if number % 50 == 0:
                yield line.strip()


def test_public_fixtures_parse_the_same_either_way() -> None:
    raws = list(_fixture_resources())
    for raw in raws:
        fast, general = _both(raw)
        assert fast == general, raw[:300]
    assert len(raws) > 500
    # parse_chunk (what ingest calls) adds a per-chunk overflow scan: still the same results
    records = [InputRecord("test", "line 1", raw, nbytes=len(raw)) for raw in raws]
    assert parse_chunk(records, OPTIONS) == [parse_record(r, OPTIONS) for r in records]


def test_monitoring_observations_take_the_fast_path() -> None:
    """The generator's shape (and so a monitor's) never falls back to the general path."""
    with gzip.open(SAMPLE / "observations.ndjson.gz") as lines:
        sample = [line.strip() for _, line in zip(range(3000), lines, strict=False)]
    declined = [raw for raw in sample if fast_parse(raw, None) is None]
    assert declined == []
    fast, general = _both(sample[0])
    assert fast.readings
    assert fast == general


BASE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "hr-1",
    "meta": {"versionId": "1"},
    "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2024-01-01T00:00:00Z",
    "valueQuantity": {"value": 44, "unit": "/min", "code": "/min"},
}
BLOOD_PRESSURE: dict[str, Any] = {
    **{k: v for k, v in BASE.items() if k != "valueQuantity"},
    "id": "bp-1",
    "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
    "component": [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": {"value": 120, "unit": "mmHg", "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
            "valueQuantity": {"value": 80, "unit": "mmHg", "code": "mm[Hg]"},
        },
    ],
}

codings = st.sampled_from(
    [
        {"system": LOINC, "code": "8867-4"},
        {"system": LOINC, "code": "8310-5"},
        {"system": LOINC, "code": "29463-7"},
        {"system": "http://example.org", "code": "local-1"},
        {"code": "8480-6"},
        {"system": None, "code": "8462-4"},
        {"system": 5, "code": "8867-4"},
        {"system": LOINC, "code": "bad  code"},
        {"system": LOINC, "code": ""},
        {"system": LOINC, "code": 7},
        {"system": LOINC, "code": None},
        {"system": LOINC},
        {"display": "no code"},
        "not a coding",
    ]
)
concepts = st.one_of(
    st.builds(lambda c: {"coding": c, "text": "t"}, st.lists(codings, max_size=3)),
    st.sampled_from([{}, {"coding": "x"}, {"coding": None}, "text", None, {"text": "only"}]),
)
numbers = st.sampled_from([44, 44.5, -0.0, 0, 185, 98.6, 2**70, True, "44", None, 1e308])
units = st.sampled_from(
    ["/min", "[degF]", "Cel", "kg", "[lb_av]", "mm[Hg]", "%", "", None, "bad unit", 3]
)
quantities = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "value": numbers,
            "unit": units,
            "code": units,
            "system": st.just("http://unitsofmeasure.org"),
            "comparator": st.sampled_from(["<", ">="]),
        },
    ),
    st.sampled_from(["q", None, [], 5]),
)
values = st.fixed_dictionaries(
    {},
    optional={
        "valueQuantity": quantities,
        "valueInteger": st.sampled_from([3, -1, True, "3", 2**40, 1.5, None]),
        "valueString": st.just("positive"),
        "valueSampledData": st.just({"origin": {"value": 0}, "period": 1, "dimensions": 1}),
        "valueCodeableConcept": st.just({"text": "x"}),
        "dataAbsentReason": st.just({"text": "asked"}),
    },
)
components = st.lists(
    st.one_of(
        st.builds(lambda c, v: {"code": c, **v}, concepts, values),
        st.sampled_from([{"valueQuantity": {"value": 1}}, "component", None]),
    ),
    max_size=3,
)
FIELD_OPTIONS: dict[str, Any] = {
    "resourceType": st.sampled_from(["Observation", "Patient", 1, None]),
    "id": st.sampled_from(["hr-1", "a.b-C9", "bad id", "", "x" * 65, 5, None]),
    "meta": st.sampled_from(
        [
            {"versionId": "1"},
            {"versionId": "7"},
            {"versionId": 2},
            {"versionId": ""},
            {"versionId": None},
            {"lastUpdated": "2024-01-01T00:00:00Z"},
            {"versionId": "1", "tag": [SUMMARY_TAG]},
            {"versionId": "1", "tag": [{"system": "x", "code": "y"}]},
            {},
            "meta",
        ]
    ),
    "status": st.sampled_from(
        ["final", "amended", "preliminary", "unknown", "cancelled", "entered-in-error", "bogus"]
        + [None, 3]
    ),
    "code": concepts,
    "subject": st.sampled_from(
        [
            {"reference": "Patient/p1"},
            {"reference": "Patient/p2", "display": "Pé 2"},
            {"reference": "http://h/fhir/Patient/p3"},
            {"reference": "Group/g1"},
            {"reference": "urn:uuid:1234"},
            {"reference": "#contained"},
            {"reference": " Patient/p1"},
            {"reference": "Patient/bad id"},
            {"reference": "p1"},
            {"reference": 5},
            {"display": "no reference"},
            "Patient/p1",
            None,
        ]
    ),
    "effectiveDateTime": st.sampled_from(
        [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.123456789+02:00",
            "2024-01-01",
            "2024-03",
            "2024",
            "2024-01-01T00:00:00",
            "2024-13-01T00:00:00Z",
            "yesterday",
            5,
            None,
        ]
    ),
    "effectivePeriod": st.sampled_from([{"start": "2024-01-01T00:00:00Z"}, {"end": "2024"}, {}]),
    "effectiveInstant": st.sampled_from(["2024-01-01T00:00:00Z", "2024"]),
    "component": st.one_of(components, st.sampled_from(["c", None])),
    "hasMember": st.just([{"reference": "Observation/x"}]),
    # what search matches (store.search_tokens): both paths extract the same tokens
    "category": st.sampled_from(
        [
            [{"coding": [{"system": "urn:c", "code": "vital-signs"}]}],
            [{"coding": [{"code": "a"}, {"system": "urn:c", "code": "a"}, {"code": "a"}]}],
            [{"text": "no coding"}, {"coding": [{"system": "urn:c"}]}],
            [{"coding": [{"code": 5}]}],
            "vital-signs",
        ]
    ),
    "identifier": st.sampled_from(
        [
            [{"system": "urn:ward7", "value": "dev-1"}, {"value": "dev-2"}],
            [{"value": "x"}, {"value": "x"}, {"system": "urn:s"}],
            [{"value": None}],
            {"value": "x"},
        ]
    ),
}


@st.composite
def observations(draw: st.DrawFn) -> dict[str, Any]:
    """The common shape with up to three fields changed or dropped (so that both paths are
    exercised: about half of these still take the fast path)."""
    resource = dict(draw(st.sampled_from([BASE, BLOOD_PRESSURE])))
    for name in draw(st.lists(st.sampled_from(sorted(FIELD_OPTIONS)), max_size=3, unique=True)):
        if draw(st.integers(0, 3)):
            resource[name] = draw(FIELD_OPTIONS[name])
        else:
            resource.pop(name, None)
    if draw(st.integers(0, 3)) == 0:
        resource.pop("valueQuantity", None)
        resource.update(draw(values))
    return resource


BAD_CODE = {"coding": [{"system": LOINC, "code": "bad  code"}]}
BP_COMPONENTS: list[dict[str, Any]] = BLOOD_PRESSURE["component"]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations())
# The rules most easily missed, pinned: a panel's own code is checked even when only its
# components carry values; a main value and components both count; one component without a
# value; an uncoded component; a censored main value beside components.
@example({**BLOOD_PRESSURE, "code": BAD_CODE})
@example({**BLOOD_PRESSURE, "valueInteger": 3})
@example({**BLOOD_PRESSURE, "valueString": "high"})
@example({**BLOOD_PRESSURE, "component": [*BP_COMPONENTS, {"code": BP_COMPONENTS[0]["code"]}]})
@example({**BLOOD_PRESSURE, "component": [{**BP_COMPONENTS[0], "code": {"text": "x"}}]})
@example({**BLOOD_PRESSURE, "valueQuantity": {"value": 1, "comparator": "<"}})
@example({**BASE, "valueQuantity": {"value": 1, "comparator": "<"}})
def test_fast_and_general_paths_agree(resource: dict[str, Any]) -> None:
    raw = json.dumps(resource, ensure_ascii=False).encode()  # big ints too, unlike orjson
    fast, general = _both(raw)
    assert fast == general
    zoned = ParseOptions(default_tz=UTC)
    assert _both(raw, zoned)[0] == _both(raw, zoned)[1]


@pytest.mark.parametrize(
    "text",
    [
        '"display":1e400',  # overflows a double: orjson rejects the document
        '"display":-1E+999',
        '"display":' + "9" * 320,
        '"display":"\\ud800"',  # a lone surrogate
        '"display":"a\x01b"',  # a raw control character
        '"display":[1,]',
        '"display":NaN',
    ],
)
def test_what_orjson_rejects_is_quarantined_either_way(text: str) -> None:
    raw = orjson.dumps(BASE)[:-1] + b"," + text.encode() + b"}"
    fast, general = _both(raw)
    assert fast == general
    assert fast.error is not None
    assert fast.error.startswith("invalid JSON")


@pytest.mark.parametrize("garbage", [b"\xff", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_invalid_utf8_in_a_skipped_field_is_quarantined_either_way(garbage: bytes) -> None:
    raw = orjson.dumps(BASE)[:-1] + b',"display":"' + garbage + b'"}'
    fast, general = _both(raw)
    assert fast == general
    assert fast.error is not None


def test_a_number_like_id_with_an_exponent_still_parses() -> None:
    """``1e234`` inside a string is a false alarm for the overflow check: still the same."""
    raw = orjson.dumps({**BASE, "id": "obs-1e234"})
    fast, general = _both(raw)
    assert fast == general
    assert fast.key == "Observation/obs-1e234"


def test_hex_ids_are_no_overflow_alarm() -> None:
    """Synthea's uuids ("...-4e85-...", "urn:uuid:12e45678-...") have the shape of a big
    exponent; they used to send 373 of its 1,253 Observations down the general path."""
    observations = [
        record.raw
        for path in sorted(SYNTHEA.glob("*.json"))
        for record in read_document(path.name, path.read_bytes(), "")
        if b'"resourceType":"Observation"' in record.raw
    ]
    assert len(observations) > 1000
    assert [raw for raw in observations if numbers_may_overflow(raw)] == []
    for text in ('{"id":"a3e4000b"}', '{"r":"urn:uuid:12e45678-9abc"}', '{"id":"7e100"}'):
        assert not numbers_may_overflow(text.encode())


@given(
    mantissa=st.from_regex(r"-?(0|[1-9][0-9]{0,3})(\.[0-9]{1,3})?", fullmatch=True),
    exponent=st.from_regex(r"[eE][+-]?[0-9]{3,4}", fullmatch=True),
    before=st.sampled_from([":", ": ", ":\n", ":[", ":[1,", ":[ "]),
    after=st.sampled_from(["}", " }", "]", ",", "\n}"]),
)
def test_every_number_with_a_big_exponent_raises_the_alarm(
    mantissa: str, exponent: str, before: str, after: str
) -> None:
    """Never a miss: a number that may overflow, wherever JSON lets it stand, is caught."""
    text = f'{{"a"{before}{mantissa}{exponent}{after}'
    assert numbers_may_overflow(text.encode()), text
    assert numbers_may_overflow(b'{"id":"a3e4000b"}\n' + text.encode())  # in a chunk


def test_weight_in_pounds_is_converted_on_the_fast_path() -> None:
    weight = {
        **BASE,
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "valueQuantity": {"value": 185, "unit": "lbs", "code": "[lb_av]"},
    }
    found = fast_parse(orjson.dumps(weight), None)
    assert found is not None
    (reading,) = found[3]
    assert round(float(reading[4]), 2) == 83.91
    assert reading[5] == "kg"
    assert reading[6:8] == (185.0, "[lb_av]")


def test_strict_mode_skips_the_fast_path() -> None:
    record = InputRecord("t", "line 1", orjson.dumps(BASE))
    with mock.patch("medsleep.ingest.parsing.fast_parse") as fast:
        parsed = parse_record(record, ParseOptions(strict=True))
    fast.assert_not_called()
    assert parsed.readings


def test_one_overflowing_record_in_a_chunk_is_quarantined_alone() -> None:
    """Ingest scans a whole chunk for overflowing numbers at once; a hit falls back to
    checking record by record, so only the offending record is rejected."""
    good = [orjson.dumps({**BASE, "id": f"hr-{i}"}) for i in range(3)]
    bad = orjson.dumps({**BASE, "id": "hr-bad"})[:-1] + b',"display":1e400}'
    raws = [good[0], bad, good[1], good[2]]
    records = [InputRecord("t", f"line {i}", raw, nbytes=len(raw)) for i, raw in enumerate(raws)]
    parsed = parse_chunk(records, OPTIONS)
    assert [p.error is not None for p in parsed] == [False, True, False, False]
    assert [p.key for p in parsed if p.readings] == [
        "Observation/hr-0",
        "Observation/hr-1",
        "Observation/hr-2",
    ]
    with mock.patch("medsleep.ingest.parsing.fast_parse", return_value=None):
        assert parse_chunk(records, OPTIONS) == parsed
