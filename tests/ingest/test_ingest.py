"""Ingest behaviour: inputs, dedupe, versions, retraction, quarantine, balanced counts."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from medsleep.errors import InputError
from medsleep.ingest import ingest_paths
from medsleep.ingest.parse_stream import auto_workers
from medsleep.store.engine import open_store
from tests.helpers import observation, quarantined, readings, write_ndjson


def test_ndjson_gz_and_folders_are_read(tmp_path: Path, sqlite_engine: Engine) -> None:
    folder = tmp_path / "in" / "deeper"
    folder.mkdir(parents=True)
    with gzip.open(folder / "a.ndjson.gz", "wt") as handle:
        handle.write(json.dumps(observation("a")) + "\n")
    write_ndjson(tmp_path / "in" / "b.ndjson", [observation("b", value=80)])
    (tmp_path / "in" / "c.json").write_text(json.dumps(observation("c", value=90)))
    (tmp_path / "in" / "notes.txt").write_text("not input")
    report = ingest_paths(sqlite_engine, [str(tmp_path / "in")])
    assert (report.resources, report.stored, report.readings) == (3, 3, 3)
    assert sorted(r["value"] for r in readings(sqlite_engine)) == [72.0, 80.0, 90.0]


def test_stdin_ndjson_and_pretty_json(sqlite_engine: Engine) -> None:
    lines = (json.dumps(observation("s1")) + "\n" + json.dumps(observation("s2")) + "\n").encode()
    report = ingest_paths(sqlite_engine, ["-"], stdin=io.BytesIO(lines))
    assert report.stored == 2
    pretty = json.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": observation("s3")}],
        },
        indent=2,
    ).encode()
    report = ingest_paths(sqlite_engine, ["-"], stdin=io.BytesIO(pretty))
    assert report.stored == 1
    assert {r["resource_key"] for r in readings(sqlite_engine)} == {
        "Observation/s1",
        "Observation/s2",
        "Observation/s3",
    }


def test_missing_path_is_an_input_error(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        ingest_paths(sqlite_engine, [str(tmp_path / "absent.ndjson")])


def test_second_ingest_of_same_input_stores_nothing(tmp_path: Path, engine: Engine) -> None:
    path = write_ndjson(
        tmp_path / "x.ndjson", [observation(f"o{i}", value=60 + i) for i in range(50)]
    )
    first = ingest_paths(engine, [str(path)])
    second = ingest_paths(engine, [str(path)])
    assert (first.stored, first.duplicates) == (50, 0)
    assert (second.stored, second.duplicates, second.readings) == (0, 50, 0)
    assert len(readings(engine)) == 50


def test_duplicates_inside_one_input_are_counted(tmp_path: Path, sqlite_engine: Engine) -> None:
    path = write_ndjson(tmp_path / "x.ndjson", [observation("same")] * 3)
    report = ingest_paths(sqlite_engine, [str(path)])
    assert (report.stored, report.duplicates) == (1, 2)


def test_resources_without_id_dedupe_by_content(tmp_path: Path, sqlite_engine: Engine) -> None:
    path = write_ndjson(tmp_path / "x.ndjson", [observation(None), observation(None, value=99)])
    ingest_paths(sqlite_engine, [str(path)])
    again = ingest_paths(sqlite_engine, [str(path)])
    assert again.duplicates == 2
    assert len(readings(sqlite_engine)) == 2


def test_new_version_supersedes_old_reading(tmp_path: Path, engine: Engine) -> None:
    ingest_paths(
        engine, [str(write_ndjson(tmp_path / "v1.ndjson", [observation("bp", version="1")]))]
    )
    amended = observation("bp", value=140, version="2", status="amended")
    report = ingest_paths(engine, [str(write_ndjson(tmp_path / "v2.ndjson", [amended]))])
    assert (report.stored, report.superseded) == (1, 1)
    states = {(r["resource_version"], r["value"]): r["state"] for r in readings(engine)}
    assert states == {("1", 72.0): "superseded", ("2", 140.0): "raw"}


def test_older_version_arriving_late_does_not_win(tmp_path: Path, sqlite_engine: Engine) -> None:
    path = write_ndjson(
        tmp_path / "x.ndjson",
        [observation("bp", value=140, version="2"), observation("bp", value=72, version="1")],
    )
    ingest_paths(sqlite_engine, [str(path)])
    active = readings(sqlite_engine, state="raw")
    assert [(r["resource_version"], r["value"]) for r in active] == [("2", 140.0)]


def test_versions_in_one_chunk_leave_one_active(tmp_path: Path, sqlite_engine: Engine) -> None:
    path = write_ndjson(
        tmp_path / "x.ndjson",
        [observation("t", value=1, version="1"), observation("t", value=2, version="2")],
    )
    ingest_paths(sqlite_engine, [str(path)])
    assert [r["value"] for r in readings(sqlite_engine, state="raw")] == [2.0]


def test_entered_in_error_retracts_stored_reading(tmp_path: Path, engine: Engine) -> None:
    ingest_paths(
        engine, [str(write_ndjson(tmp_path / "a.ndjson", [observation("hr", version="1")]))]
    )
    oops = observation("hr", version="2", status="entered-in-error")
    report = ingest_paths(engine, [str(write_ndjson(tmp_path / "b.ndjson", [oops]))])
    assert report.skipped_reasons == {"entered-in-error": 1}
    assert report.retracted == 1
    (row,) = readings(engine)
    assert row["state"] == "retracted"  # kept for audit, excluded from everything else


BAD_RECORDS = [
    (b"{not json", "invalid JSON"),
    (json.dumps(observation("x", when="2026-01-05T10:00:00")).encode(), "no time zone"),
    (json.dumps(observation("x", when="yesterday")).encode(), "not a FHIR dateTime"),
    (json.dumps(observation("x", value="72")).encode(), "not a FHIR decimal"),
    (json.dumps(observation("x", value=True)).encode(), "not a FHIR decimal"),
    (json.dumps(observation("x", status="done")).encode(), "status"),
    (json.dumps(observation("bad id!")).encode(), "not a FHIR id"),
    (json.dumps(observation("x", unit="furlongs")).encode(), "cannot be converted"),
    (json.dumps(observation("x", code="bad  code")).encode(), "not a FHIR code"),
    (b"[1, 2]", "not a JSON object"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_RECORDS, ids=[m for _, m in BAD_RECORDS])
def test_bad_record_is_quarantined_and_batch_goes_on(
    tmp_path: Path, sqlite_engine: Engine, raw: bytes, message: str
) -> None:
    good = json.dumps(observation("good")).encode()
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(good + b"\n" + raw + b"\n" + good.replace(b'"good"', b'"good2"') + b"\n")
    report = ingest_paths(sqlite_engine, [str(path)])
    assert (report.resources, report.stored, report.quarantined) == (3, 2, 1)
    (entry,) = quarantined(sqlite_engine)
    assert message in entry["error"]
    assert (entry["source"], entry["position"]) == (str(path), "line 2")
    assert entry["raw"] == raw.decode()


def test_default_tz_accepts_zoneless_times(tmp_path: Path, sqlite_engine: Engine) -> None:
    from zoneinfo import ZoneInfo

    from medsleep.ingest import ParseOptions

    path = write_ndjson(tmp_path / "x.ndjson", [observation("z", when="2026-01-05T10:00:00")])
    report = ingest_paths(
        sqlite_engine, [str(path)], options=ParseOptions(default_tz=ZoneInfo("Europe/Berlin"))
    )
    assert report.stored == 1
    (row,) = readings(sqlite_engine)
    assert row["effective_ms"] == 1767603600000  # 09:00 UTC


def test_strict_mode_validates_whole_resource(tmp_path: Path, sqlite_engine: Engine) -> None:
    from medsleep.ingest import ParseOptions

    bad = observation("s", performer="not a list of references")
    path = write_ndjson(tmp_path / "x.ndjson", [observation("ok"), bad])
    loose = ingest_paths(sqlite_engine, [str(path)])
    assert loose.stored == 2  # the fast path checks only the fields it stores
    strict_engine = open_store(f"sqlite:///{tmp_path / 'strict.db'}")
    strict = ingest_paths(strict_engine, [str(path)], options=ParseOptions(strict=True))
    assert (strict.stored, strict.quarantined) == (1, 1)
    assert "fhir.resources" in quarantined(strict_engine)[0]["error"]


def test_bundle_entries_have_positions_and_skip_other_types(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:aaaa", "resource": {"resourceType": "Patient", "id": "p9"}},
            {"resource": observation("b1", patient="x", subject={"reference": "urn:uuid:aaaa"})},
            {"resource": observation("b2", value="bad")},
            {"request": {"method": "DELETE", "url": "Observation/old"}},
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    report = ingest_paths(sqlite_engine, [str(path)])
    assert (report.resources, report.stored, report.skipped, report.quarantined) == (3, 1, 1, 1)
    assert readings(sqlite_engine)[0]["patient"] == "p9"
    assert quarantined(sqlite_engine)[0]["position"] == "entry[2]"


def test_unresolvable_urn_subject_is_quarantined(tmp_path: Path, sqlite_engine: Engine) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": observation("u", subject={"reference": "urn:uuid:nowhere"})}],
    }
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    report = ingest_paths(sqlite_engine, [str(tmp_path / "b.json")])
    assert report.quarantined == 1
    assert "does not resolve" in quarantined(sqlite_engine)[0]["error"]


def test_workers_give_the_same_result(tmp_path: Path) -> None:
    resources = [observation(f"w{i}", value=50 + i % 40) for i in range(3000)]
    resources[100] = {"resourceType": "Observation", "status": "nope"}
    path = write_ndjson(tmp_path / "x.ndjson", resources)
    one = open_store(f"sqlite:///{tmp_path / 'one.db'}")
    two = open_store(f"sqlite:///{tmp_path / 'two.db'}")
    a = ingest_paths(one, [str(path)], chunk_size=500)
    b = ingest_paths(two, [str(path)], chunk_size=500, workers=2)
    assert {k: v for k, v in a.as_json().items() if k != "seconds"} == {
        k: v for k, v in b.as_json().items() if k not in ("seconds",)
    }
    strip = ("id",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in readings(one)] == [
        {k: v for k, v in r.items() if k not in strip} for r in readings(two)
    ]


@pytest.mark.parametrize(
    ("cpus", "size", "expected"),
    [
        (2, 100 * 2**20, 2),
        (16, 100 * 2**20, 8),  # the one writing process is the limit
        (1, 100 * 2**20, 0),  # one core: workers would only compete with the writer
        (2, 2**20, 0),  # small input: starting a pool costs more than it saves
        (2, None, 0),  # stdin: size unknown
    ],
)
def test_the_default_worker_count_follows_cpus_and_input_size(
    monkeypatch: pytest.MonkeyPatch, cpus: int, size: int | None, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)
    assert auto_workers(size) == expected


record = st.one_of(
    st.builds(
        lambda i, v: json.dumps(observation(f"h{i}", value=v)),
        st.integers(0, 30),
        st.integers(0, 250),
    ),
    st.builds(lambda i: json.dumps(observation(f"h{i}", status="cancelled")), st.integers(0, 30)),
    st.builds(lambda i: json.dumps({"resourceType": "Patient", "id": f"p{i}"}), st.integers(0, 5)),
    st.text(max_size=20).filter(lambda s: s.strip() and "\n" not in s and "\r" not in s),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(record, max_size=40))
def test_counts_always_balance(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "h.ndjson"
    path.write_text("".join(line + "\n" for line in lines))
    engine = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        for _ in range(2):
            report = ingest_paths(engine, [str(path)])
            assert report.resources == len([ln for ln in lines if ln.strip()])
            assert report.balanced
    finally:
        engine.dispose()
        (tmp_path / "h.db").unlink()


def test_parse_workers_run_below_the_writers_priority() -> None:
    """The writing process is what an ingest waits for: its parse workers yield the CPU."""
    from medsleep.ingest.parse_stream import WORKER_NICENESS, ParseStream
    from medsleep.ingest.parsing import ParseOptions

    own = os.nice(0)
    with ParseStream([], options=ParseOptions(), workers=1) as stream:
        assert stream._pool is not None
        assert stream._pool.submit(os.nice, 0).result() == min(19, own + WORKER_NICENESS)
    assert os.nice(0) == own  # the writer's own priority is untouched
