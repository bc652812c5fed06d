"""Ingest under hostile input (issue 12): one bad record never costs the good ones, and every
file walked is accounted for."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from medsleep.ingest import ingest_paths
from tests.helpers import observation, quarantined, readings

DEEP = 10_000


def _deep_object() -> str:
    return '{"a":' * DEEP + "1" + "}" * DEEP


def _deep_observation() -> str:
    head = json.dumps(observation("deep", version="1"))[:-1]
    return head + ', "extension": ' + "[" * DEEP + "]" * DEEP + "}"


@pytest.mark.parametrize("workers", [0, 2])
def test_deeply_nested_records_are_quarantined_and_the_rest_goes_on(
    tmp_path: Path, sqlite_engine: Engine, workers: int
) -> None:
    good = [json.dumps(observation(f"g{i}", version="1")) for i in range(6)]
    lines = [*good[:3], _deep_object(), _deep_observation(), *good[3:]]
    path = tmp_path / "deep.ndjson"
    path.write_text("\n".join(lines) + "\n")
    report = ingest_paths(sqlite_engine, [str(path)], workers=workers)
    assert (report.resources, report.stored, report.quarantined) == (8, 6, 2)
    assert report.balanced
    assert [q["position"] for q in quarantined(sqlite_engine)] == ["line 4", "line 5"]
    assert all("depth" in q["error"] for q in quarantined(sqlite_engine))
    assert len(readings(sqlite_engine)) == 6


def test_concurrent_ingests_of_the_same_input_store_each_resource_once(
    tmp_path: Path, engine: Engine
) -> None:
    import threading

    from medsleep.synth import generate

    generate(tmp_path / "in", patients=3, days=0.1, seed=3)
    path = str(tmp_path / "in" / "observations.ndjson")
    reports: list[object] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def ingest() -> None:
        start.wait()
        try:
            reports.append(ingest_paths(engine, [path], chunk_size=200))
        except BaseException as exc:  # noqa: BLE001  (asserted below, in the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=ingest) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    resources = reports[0].resources  # type: ignore[attr-defined]
    assert sum(r.stored for r in reports) == resources  # type: ignore[attr-defined]
    assert sum(r.duplicates for r in reports) == 2 * resources  # type: ignore[attr-defined]
    keys = {(r["resource_key"], r["part"]) for r in readings(engine)}
    assert len(keys) == len(readings(engine))


def _good_lines(n: int, prefix: str = "s") -> list[bytes]:
    return [json.dumps(observation(f"{prefix}{i}", version="1")).encode() for i in range(n)]


@pytest.mark.parametrize(
    ("name", "stream", "good", "bad"),
    [
        ("broken first line", b"{not json\n" + b"\n".join(_good_lines(50)) + b"\n", 50, 1),
        ("BOM", b"\xef\xbb\xbf" + b"\n".join(_good_lines(50)) + b"\n", 50, 0),
        ("CR-only lines", b"\r".join(_good_lines(50)) + b"\r", 50, 0),
        ("CRLF lines", b"\r\n".join(_good_lines(50)) + b"\r\n", 50, 0),
        ("truncated first line", b'{"resourceType": "Obs\n' + b"\n".join(_good_lines(9)), 9, 1),
    ],
)
def test_stdin_is_sniffed_without_swallowing_the_stream(
    sqlite_engine: Engine, name: str, stream: bytes, good: int, bad: int
) -> None:
    report = ingest_paths(sqlite_engine, ["-"], stdin=io.BytesIO(stream))
    assert (report.stored, report.quarantined) == (good, bad), name
    rows = quarantined(sqlite_engine)
    assert [q["position"] for q in rows] == ["line 1"] * bad
    assert all(len(q["raw"]) < 100 for q in rows)  # the bad line alone, not the stream


def test_stdin_pretty_printed_document_and_bom_still_read_whole(sqlite_engine: Engine) -> None:
    document = json.dumps(observation("pretty"), indent=2).encode()
    report = ingest_paths(sqlite_engine, ["-"], stdin=io.BytesIO(b"\xef\xbb\xbf" + document))
    assert report.stored == 1


def test_lines_are_split_across_read_blocks(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from medsleep.ingest import sources

    monkeypatch.setattr(sources, "_READ_BUFFER", 7)  # every line and CRLF cut somewhere
    path = tmp_path / "a.ndjson"
    path.write_bytes(b"\r\n".join(_good_lines(20)) + b"\r\n")
    report = ingest_paths(sqlite_engine, [str(path)])
    assert (report.stored, report.quarantined) == (20, 0)
    assert [r["resource_key"] for r in readings(sqlite_engine)][-1] == "Observation/s19"


def test_corrupt_and_truncated_gz_are_accounted_per_file_and_the_batch_goes_on(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-corrupt.ndjson.gz").write_bytes(b"\x1f\x8b\x08\x00garbage, not deflate" * 10)
    whole = gzip.compress(b"\n".join(_good_lines(4000, "t")) + b"\n")
    (folder / "b-truncated.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    (folder / "c-good.ndjson").write_bytes(b"\n".join(_good_lines(5, "g")) + b"\n")
    report = ingest_paths(sqlite_engine, [str(folder)], chunk_size=500)
    assert report.balanced
    files = {Path(f["file"]).name: f for f in report.files}
    assert set(files) == {"a-corrupt.ndjson.gz", "b-truncated.ndjson.gz", "c-good.ndjson"}
    assert "error" in files["a-corrupt.ndjson.gz"]
    truncated = files["b-truncated.ndjson.gz"]
    assert "error" in truncated
    assert "after line" in truncated["error"]
    assert "error" not in files["c-good.ndjson"]
    keys = {r["resource_key"] for r in readings(sqlite_engine)}
    assert {f"Observation/g{i}" for i in range(5)} <= keys
    read_of_truncated = truncated["records"] - 1  # less its error record
    assert len([k for k in keys if k.startswith("Observation/t")]) == read_of_truncated
    assert read_of_truncated > 0
    positions = {(Path(q["source"]).name, q["position"][:5]) for q in quarantined(sqlite_engine)}
    assert positions == {("a-corrupt.ndjson.gz", "file"), ("b-truncated.ndjson.gz", "after")}


def test_special_files_are_read_and_suffixes_match_in_any_case(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    import os
    import threading

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "A.JSON").write_text(json.dumps(observation("upper")))
    (folder / "B.NDJSON.GZ").write_bytes(gzip.compress(_good_lines(1, "gz")[0]))
    (folder / "notes.txt").write_text("not input")
    os.mkfifo(folder / "pipe.ndjson")  # in a folder: reported, never opened (it could block)
    fifo = tmp_path / "named-pipe"  # like <(cat f): no suffix, named explicitly
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"\n".join(_good_lines(3, "f"))))
    writer.start()
    report = ingest_paths(sqlite_engine, [str(folder), str(fifo), "/dev/null"])
    writer.join()
    assert report.stored == 5
    assert report.balanced
    by_name = {Path(f["file"]).name: f for f in report.files}
    assert by_name["notes.txt"]["not_read"].startswith("not an input suffix")
    assert by_name["pipe.ndjson"]["not_read"] == "not a regular file"
    assert by_name["named-pipe"]["records"] == 3
    assert by_name["null"]["records"] == 0
