"""The cold archive: exact round trips, checksums, crash safety, no overwrites."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import medsleep.archive.files as archive
from medsleep.archive.files import (
    ArchiveFile,
    archive_file_name,
    file_sha256,
    iter_archive_files,
    iter_temp_files,
    read_archive_file,
    verify_archive_file,
    write_archive_file,
)
from medsleep.errors import ArchiveError

NAME = "2026/11/run-42-0.parquet"


def observation_json(i: int, note: str = "") -> str:
    resource = {
        "resourceType": "Observation",
        "id": f"obs-{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
        "note": [{"text": note}],
    }
    return json.dumps(resource, ensure_ascii=False, indent=1)


def archived_readings(n: int = 6) -> pd.DataFrame:
    """The reading columns consolidation archives, plus summary linkage; awkward values on
    purpose: unicode, escapes, NUL, a 2 MB JSON text, missing values, nullable ints."""
    notes = ["", 'quote " back\\slash', "tab\tnewline\n", "Zoë 体温 😴 \u0000 end", "x" * 2_000_000]
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64) * 1_000_000_007,
            "patient": pd.Series([f"pat-{i % 2}-ü" for i in range(n)], dtype="str"),
            "code_system": "http://loinc.org",
            "code": "8867-4",
            "t": np.int64(1_764_000_000_000) + np.arange(n, dtype=np.int64) * 60_000,
            "value": np.array([60.0, 61.5, -0.0, 1e-300, 72.25, 1e300][:n] + [0.1] * (n - 6)),
            "unit": "/min",
            "orig_value": pd.Series([1.0, np.nan] * (n // 2) + [2.0] * (n % 2), dtype="float64"),
            "orig_unit": pd.Series(["{beats}/min", None] * (n // 2) + ["x"] * (n % 2), dtype="str"),
            "resource_key": [f"Observation/obs-{i}" for i in range(n)],
            "resource_version": pd.Series(["1", "2"] * (n // 2) + ["3"] * (n % 2), dtype="str"),
            "part": np.zeros(n, dtype=np.int64),
            "status": "final",
            "resource_json": pd.Series(
                [observation_json(i, notes[i % len(notes)]) for i in range(n)], dtype="str"
            ),
            "batch_id": pd.array([7, None] * (n // 2) + [8] * (n % 2), dtype="Int64"),
            "summary_id": np.arange(n, dtype=np.int64) // 3,
            "summary_bucket_start_ms": np.full(n, 1_763_999_200_000, dtype=np.int64),
            "legal": np.array([True, False] * (n // 2) + [True] * (n % 2)),
            "small": np.arange(n, dtype=np.int32),
            "ingested_at": pd.to_datetime(np.arange(n) * 1_000, unit="ms", utc=True),
        }
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "medsleep-archive"


@pytest.fixture
def written(root: Path) -> tuple[pd.DataFrame, ArchiveFile]:
    frame = archived_readings()
    return frame, write_archive_file(root, NAME, frame)


def test_round_trip_is_exact(root: Path, written: tuple[pd.DataFrame, ArchiveFile]) -> None:
    frame, stored = written
    back = read_archive_file(root, NAME, stored.sha256)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert [s.encode() for s in back["resource_json"]] == [
        s.encode() for s in frame["resource_json"]
    ]
    assert np.signbit(back["value"].to_numpy()[2])


def test_archive_file_records_what_the_database_needs(
    root: Path, written: tuple[pd.DataFrame, ArchiveFile]
) -> None:
    frame, stored = written
    path = root / "2026" / "11" / "run-42-0.parquet"
    assert stored == ArchiveFile(
        name=NAME, sha256=file_sha256(path), rows=len(frame), bytes=path.stat().st_size
    )
    assert stored.path(root) == path
    verify_archive_file(root, NAME, stored.sha256, rows=len(frame))
    verify_archive_file(root, NAME, stored.sha256.upper())


def test_archive_moves_with_its_root(
    root: Path, written: tuple[pd.DataFrame, ArchiveFile], tmp_path: Path
) -> None:
    frame, stored = written
    moved = root.rename(tmp_path / "elsewhere")
    pd.testing.assert_frame_equal(read_archive_file(moved, NAME, stored.sha256), frame)


def test_object_string_columns_come_back_as_str(root: Path) -> None:
    frame = pd.DataFrame(
        {"id": [1, 2], "text": pd.Series(["é", None], dtype=object), "blob": [b"\x00", b"\xff"]}
    )
    stored = write_archive_file(root, NAME, frame)
    back = read_archive_file(root, NAME, stored.sha256)
    assert str(back["text"].dtype) == "str"
    assert back["text"].iloc[0] == "é"
    assert pd.isna(back["text"].iloc[1])
    assert back["blob"].tolist() == [b"\x00", b"\xff"]


def test_empty_frame_round_trips(root: Path) -> None:
    frame = archived_readings().iloc[:0]
    stored = write_archive_file(root, NAME, frame)
    assert stored.rows == 0
    pd.testing.assert_frame_equal(read_archive_file(root, NAME, stored.sha256), frame)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(st.text(max_size=300), min_size=1, max_size=20),
    value=st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_text_round_trips(tmp_path: Path, texts: list[str], value: float) -> None:
    root = tmp_path / f"a{time.perf_counter_ns()}"
    frame = pd.DataFrame(
        {
            "id": np.arange(len(texts), dtype=np.int64),
            "resource_json": pd.Series(texts, dtype="str"),
            "value": value,
        }
    )
    stored = write_archive_file(root, "x.parquet", frame)
    back = read_archive_file(root, "x.parquet", stored.sha256)
    assert back["resource_json"].tolist() == texts
    assert np.array_equal(back["value"], frame["value"], equal_nan=True)


def test_read_some_columns_and_rows(root: Path, written: tuple[pd.DataFrame, ArchiveFile]) -> None:
    frame, stored = written
    back = read_archive_file(
        root, NAME, stored.sha256, columns=["id", "value"], filters=[("summary_id", "==", 1)]
    )
    expected = frame.loc[frame["summary_id"] == 1, ["id", "value"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected)
    either = [[("summary_id", "==", 0)], [("id", "==", int(frame["id"].iloc[-1]))]]
    unverified = read_archive_file(root, NAME, filters=either)
    assert unverified["id"].tolist() == frame["id"].iloc[[0, 1, 2, 5]].tolist()
    assert len(read_archive_file(root, NAME)) == len(frame)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", [0.1, 0.5, 0.999])
def test_a_flipped_byte_is_detected(
    root: Path, written: tuple[pd.DataFrame, ArchiveFile], where: float
) -> None:
    _, stored = written
    path = stored.path(root)
    flip_byte(path, int(path.stat().st_size * where))
    with pytest.raises(ArchiveError, match="fails its checksum"):
        verify_archive_file(root, NAME, stored.sha256)
    with pytest.raises(ArchiveError, match="fails its checksum"):
        read_archive_file(root, NAME, stored.sha256)


def test_a_truncated_file_is_detected(
    root: Path, written: tuple[pd.DataFrame, ArchiveFile]
) -> None:
    _, stored = written
    path = stored.path(root)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="fails its checksum"):
        verify_archive_file(root, NAME, stored.sha256)
    # Without a checksum to compare, the missing footer still makes it unreadable.
    with pytest.raises(ArchiveError, match="unreadable"):
        read_archive_file(root, NAME)


def test_a_missing_file_is_reported(root: Path) -> None:
    with pytest.raises(ArchiveError, match="missing"):
        verify_archive_file(root, NAME, "0" * 64)
    with pytest.raises(ArchiveError, match="missing"):
        read_archive_file(root, NAME)


def test_garbage_with_a_matching_checksum_is_unreadable(root: Path) -> None:
    path = root / "junk.parquet"
    root.mkdir()
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ArchiveError, match="unreadable"):
        verify_archive_file(root, "junk.parquet", file_sha256(path))


def test_a_wrong_row_count_is_reported(
    root: Path, written: tuple[pd.DataFrame, ArchiveFile]
) -> None:
    _, stored = written
    with pytest.raises(ArchiveError, match="holds 6 rows, expected 7"):
        verify_archive_file(root, NAME, stored.sha256, rows=7)


def test_rewriting_the_same_content_is_idempotent(
    root: Path, written: tuple[pd.DataFrame, ArchiveFile]
) -> None:
    frame, stored = written
    inode = stored.path(root).stat().st_ino
    assert write_archive_file(root, NAME, frame) == stored
    assert stored.path(root).stat().st_ino == inode
    assert list(iter_temp_files(root)) == []


def test_rewriting_different_content_is_refused(
    root: Path, written: tuple[pd.DataFrame, ArchiveFile]
) -> None:
    frame, stored = written
    changed = frame.assign(value=frame["value"] + 1)
    with pytest.raises(ArchiveError, match="different content"):
        write_archive_file(root, NAME, changed)
    verify_archive_file(root, NAME, stored.sha256)
    assert list(iter_temp_files(root)) == []


def test_without_hard_links_the_write_still_never_overwrites(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(archive.os, "link", no_links)
    frame = archived_readings()
    stored = write_archive_file(root, NAME, frame)
    assert write_archive_file(root, NAME, frame) == stored
    with pytest.raises(ArchiveError, match="different content"):
        write_archive_file(root, NAME, frame.iloc[:3])
    verify_archive_file(root, NAME, stored.sha256)
    assert list(iter_temp_files(root)) == []


CRASH_SCRIPT = """
import os, stat, sys
from pathlib import Path
import numpy as np, pandas as pd
import medsleep.archive.files as archive

real_fsync = os.fsync

def crash(fd):
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os._exit(9)  # the power goes out once the data is written, before it is published
    real_fsync(fd)

archive.os.fsync = crash
frame = pd.DataFrame({"id": np.arange(1000, dtype=np.int64), "value": np.ones(1000)})
archive.write_archive_file(Path(sys.argv[1]), sys.argv[2], frame)
"""


def test_a_crash_mid_write_leaves_no_visible_file_and_a_retry_succeeds(root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(root), NAME],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 9, result.stderr
    assert not (root / NAME).exists()
    assert list(iter_archive_files(root)) == []
    leftovers = list(iter_temp_files(root))
    assert len(leftovers) == 1
    assert leftovers[0].startswith("2026/11/.run-42-0.parquet.")

    frame = pd.DataFrame({"id": np.arange(1000, dtype=np.int64), "value": np.ones(1000)})
    stored = write_archive_file(root, NAME, frame)
    assert list(iter_archive_files(root)) == [NAME]
    pd.testing.assert_frame_equal(read_archive_file(root, NAME, stored.sha256), frame)


def test_a_failing_write_cleans_up_after_itself(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archive.os, "fsync", disk_full)
    with pytest.raises(ArchiveError, match="No space left"):
        write_archive_file(root, NAME, archived_readings())
    assert not (root / NAME).exists()
    assert list(iter_temp_files(root)) == []


def test_a_bad_read_back_removes_the_new_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "file_sha256", lambda path: "0" * 64)
    with pytest.raises(ArchiveError, match="reads back with sha256"):
        write_archive_file(root, NAME, archived_readings())
    assert not (root / NAME).exists()
    monkeypatch.undo()
    stored = write_archive_file(root, NAME, archived_readings())
    verify_archive_file(root, NAME, stored.sha256)


def test_a_read_back_with_other_ids_is_refused(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = archive.pq.ParquetFile

    class ShiftedIds:
        def __init__(self, path: Path, **kwargs: object) -> None:
            self._file = real(path, **kwargs)
            self.metadata = self._file.metadata

        def read(self, columns: list[str]) -> object:
            table = self._file.read(columns=columns)
            return table.set_column(0, "id", archive.pa.array(np.arange(len(table)) + 99))

    monkeypatch.setattr(archive.pq, "ParquetFile", ShiftedIds)
    with pytest.raises(ArchiveError, match="different 'id' values"):
        write_archive_file(root, NAME, archived_readings())
    assert not (root / NAME).exists()


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/abs/run.parquet",
        "../run.parquet",
        "2026/../../run.parquet",
        "2026/./run.parquet",
        "2026//run.parquet",
        "2026\\run.parquet",
        "run.csv",
        "2026/.hidden.parquet",
        "run.parquet/",
    ],
)
def test_unsafe_names_are_refused(root: Path, name: str) -> None:
    frame = archived_readings()
    with pytest.raises(ArchiveError, match="relative POSIX path"):
        write_archive_file(root, name, frame)
    with pytest.raises(ArchiveError, match="relative POSIX path"):
        read_archive_file(root, name)
    assert not root.exists()


def test_columns_that_cannot_be_archived_are_refused(root: Path) -> None:
    frame = pd.DataFrame({"id": [1], "details": [{"a": 1}]})
    with pytest.raises(ArchiveError, match="'details' holds"):
        write_archive_file(root, NAME, frame)
    with pytest.raises(ArchiveError, match="repeat"):
        write_archive_file(root, NAME, pd.DataFrame([[1, 2]], columns=["id", "id"]))
    assert list(iter_temp_files(root)) == []


def test_iter_archive_files_lists_published_files_only(root: Path) -> None:
    assert list(iter_archive_files(root)) == []
    frame = pd.DataFrame({"id": [1]})
    for name in ["2026/12/run-2-0.parquet", "2026/11/run-1-1.parquet", "2026/11/run-1-0.parquet"]:
        write_archive_file(root, name, frame)
    (root / "2026" / "11" / ".run-9-0.parquet.abc.tmp").write_bytes(b"half")
    (root / "notes.txt").write_text("not an archive file")
    assert list(iter_archive_files(root)) == [
        "2026/11/run-1-0.parquet",
        "2026/11/run-1-1.parquet",
        "2026/12/run-2-0.parquet",
    ]
    assert list(iter_temp_files(root)) == ["2026/11/.run-9-0.parquet.abc.tmp"]


def test_archive_file_name_follows_the_layout() -> None:
    assert archive_file_name(42, 0, datetime(2026, 1, 5)) == "2026/01/run-42-0.parquet"


def test_frame_index_is_not_stored(root: Path) -> None:
    frame = pd.DataFrame({"id": [3, 4]}, index=[10, 20])
    stored = write_archive_file(root, NAME, frame)
    back = read_archive_file(root, NAME, stored.sha256)
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))


@pytest.mark.slow
def test_write_speed_for_100k_readings(root: Path) -> None:
    n = 100_000
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "patient": pd.Series([f"patient-{i % 500:04d}" for i in range(n)], dtype="str"),
            "code_system": "http://loinc.org",
            "code": "8867-4",
            "t": np.int64(1_764_000_000_000) + np.arange(n, dtype=np.int64) * 1000,
            "value": rng.normal(75, 8, n).round(1),
            "unit": "/min",
            "orig_value": np.nan,
            "orig_unit": pd.Series([None] * n, dtype="str"),
            "resource_key": [f"Observation/obs-{i}" for i in range(n)],
            "resource_version": "1",
            "part": np.zeros(n, dtype=np.int64),
            "status": "final",
            "resource_json": pd.Series([observation_json(i) for i in range(n)], dtype="str"),
            "batch_id": pd.array(np.full(n, 3), dtype="Int64"),
            "summary_id": np.arange(n, dtype=np.int64) // 60,
        }
    )
    started = time.perf_counter()
    stored = write_archive_file(root, NAME, frame)
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    back = read_archive_file(root, NAME, stored.sha256)
    read_elapsed = time.perf_counter() - started
    print(
        f"archive write+verify {n} rows: {elapsed:.3f}s ({n / elapsed:,.0f} rows/s, "
        f"{stored.bytes / 1e6:.1f} MB); read+verify {read_elapsed:.3f}s "
        f"({n / read_elapsed:,.0f} rows/s)"
    )
    assert len(back) == n
    assert elapsed < 20  # a regression guard only
