"""Bundles, read whole (msgspec), through orjson, or streamed (ijson), give the same records;
urn:uuid subjects resolve wherever their Patient entry is; counts balance."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from medsleep.fhir.fastpath import fast_parse
from medsleep.ingest import ingest_paths
from medsleep.ingest.bundles import bundle_entries_records, read_whole_bundle, stream_bundle
from medsleep.ingest.parsing import ParseOptions, parse_chunk
from medsleep.ingest.records import InputRecord
from medsleep.ingest.sources import read_json_file
from tests.conftest import SYNTHEA
from tests.helpers import observation, quarantined, readings


def _whole(data: bytes, source: str = "b") -> list[InputRecord]:
    records = read_whole_bundle(source, data, "")
    assert records is not None
    return list(records)


def _with_orjson(data: bytes) -> list[InputRecord]:
    entries = orjson.loads(data)["entry"]
    return list(bundle_entries_records("b", "", entries, len(data) // max(1, len(entries))))


def _streamed(data: bytes) -> list[InputRecord]:
    return list(stream_bundle("b", data[:100], io.BytesIO(data[100:])))


def _comparable(records: list[InputRecord]) -> list[tuple[Any, ...]]:
    # nbytes is each reader's own estimate of the bytes behind a record (progress only)
    return sorted(r._replace(nbytes=0) for r in records)


def _bundle(*entries: dict[str, Any]) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": list(entries)})


def _patient(pid: str) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{pid}", "resource": {"resourceType": "Patient", "id": pid}}


def _urn_observation(rid: str, pid: str) -> dict[str, Any]:
    return {"resource": observation(rid, subject={"reference": f"urn:uuid:{pid}"})}


def test_synthea_bundles_give_the_same_records_every_way() -> None:
    for path in sorted(SYNTHEA.glob("*.json")):
        data = path.read_bytes()
        whole = _whole(data)
        assert len(whole) == len(orjson.loads(data)["entry"])
        assert _comparable(whole) == _comparable(_with_orjson(data)) == _comparable(_streamed(data))
        patients = [r for r in whole if r.resource and r.resource.get("resourceType") == "Patient"]
        assert len(patients) == 1  # read for the dashboard's header (ingest.patients)
        targets = {r.subject_target for r in whole if r.raw and r not in patients}
        assert len(targets) == 1
        assert next(iter(targets)).startswith("Patient/")  # type: ignore[union-attr]


def test_synthea_vital_signs_take_the_fast_path() -> None:
    path = sorted(SYNTHEA.glob("*.json"))[0]
    records = [r for r in _whole(path.read_bytes()) if r.raw]
    fast = [r for r in records if fast_parse(r.raw, None, False, r.subject_target) is not None]
    # the vital signs and the numeric labs; value[x] as a code or a string goes the general way
    assert len(fast) > len(records) / 2
    urn_only = [fast_parse(r.raw, None, False, None) for r in records]
    assert urn_only == [None] * len(records)  # unresolved urn:uuid: the general path quarantines


def test_a_patient_after_its_observations_still_resolves_when_streamed(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    data = _bundle(_urn_observation("o1", "late"), _urn_observation("o2", "late"), _patient("late"))
    streamed = [r for r in _streamed(data) if r.raw]
    assert [r.subject_target for r in streamed[1:]] == ["Patient/late"] * 2
    assert streamed[0].full_url == "urn:uuid:late"  # the Patient itself, read for the header
    path = tmp_path / "late.json"
    path.write_bytes(data)
    with path.open("rb") as handle:  # streamed: the document is above a limit of 40 bytes
        records = list(read_json_file(str(path), handle, whole_limit=40))
    assert [r.position for r in records] == ["entry[2]", "entry[0]", "entry[1]"]
    report = ingest_paths(sqlite_engine, [str(path)])
    assert (report.stored, report.skipped, report.quarantined) == (2, 1, 0)
    assert {r["patient"] for r in readings(sqlite_engine)} == {"late"}


def test_invalid_json_part_way_through_a_stream_keeps_what_came_before() -> None:
    data = _bundle(_patient("p"), _urn_observation("o1", "p"), _urn_observation("o2", "nobody"))
    broken = data[: data.rindex(b'"o2"')] + b"!!"
    records = _streamed(broken)
    assert [r.position for r in records] == ["entry[0]", "entry[1]", "after entry[1]"]
    assert records[-1].error is not None
    assert records[-1].error.startswith("invalid JSON after entry[1]")


def test_odd_entries_fall_back_to_orjson_with_their_reasons(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    data = _bundle(
        {"resource": None},
        {"resource": "a string"},
        {"fullUrl": 7, "resource": observation("o1")},
    )
    assert read_whole_bundle("b", orjson.dumps({"resourceType": "Observation"}), "") is None
    (tmp_path / "odd.json").write_bytes(data)
    report = ingest_paths(sqlite_engine, [str(tmp_path / "odd.json")])
    assert (report.resources, report.stored, report.quarantined) == (2, 1, 1)
    assert quarantined(sqlite_engine)[0]["error"] == "entry.resource is not an object"


@st.composite
def _bundles(draw: st.DrawFn) -> tuple[bytes, int]:
    """A Bundle of Patients, urn:uuid Observations (some pointing nowhere) and Encounters,
    in any order; and how many Observations point at a Patient of the Bundle."""
    patients = draw(st.lists(st.sampled_from("abc"), unique=True, max_size=3))
    entries: list[dict[str, Any]] = [_patient(p) for p in patients]
    resolvable = 0
    for index in range(draw(st.integers(0, 8))):
        target = draw(st.sampled_from(["a", "b", "c", "nowhere"]))
        resolvable += target in patients
        entries.append(_urn_observation(f"o{index}", target))
    entries += [{"resource": {"resourceType": "Encounter", "id": "e"}}] * draw(st.integers(0, 2))
    return _bundle(*draw(st.permutations(entries))), resolvable


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bundles())
def test_every_reader_resolves_what_resolves_and_counts_balance(
    bundle: tuple[bytes, int],
) -> None:
    data, resolvable = bundle
    whole = _whole(data)
    assert _comparable(whole) == _comparable(_with_orjson(data)) == _comparable(_streamed(data))
    parsed = parse_chunk(whole, ParseOptions())
    stored = [p for p in parsed if p.readings and not p.skipped]  # a Patient: skipped, its row kept
    assert len(stored) == resolvable  # a resolvable reference is never quarantined
    assert all(p.error and "does not resolve" in p.error for p in parsed if p.error)
    assert len(parsed) == len(stored) + sum(1 for p in parsed if p.skipped or p.error)


def test_a_bundle_above_the_limit_is_streamed_with_the_same_records(tmp_path: Path) -> None:
    entries = [_patient("p")] + [
        _urn_observation(f"o{i}", "p") | {"fullUrl": f"urn:uuid:o{i}"} for i in range(300)
    ]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}))
    with path.open("rb") as handle:
        streamed = list(read_json_file(str(path), handle, whole_limit=1024))
    assert _comparable(streamed) == _comparable(_whole(path.read_bytes(), str(path)))
    assert 0 < sum(r.nbytes for r in streamed) <= path.stat().st_size
