"""Archive format 2: bodies as the store keeps them, with the store's dictionaries in the file.

The file restores byte for byte on its own (the store's dictionary table gone), format-1 files
(texts as ``resource_json``) written before it still restore, and a format this medsleep does
not know is refused instead of misread.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, text

from medsleep.archive.body_format import (
    BODIES_MIN_ROWS,
    BODY_COLUMN,
    DICTIONARY_KEY,
    FORMAT_BODIES,
    FORMAT_KEY,
    TEXT_COLUMN,
    format_of,
)
from medsleep.archive.files import footer_metadata, read_archived_readings, write_archive_file
from medsleep.archive.index import ARCHIVE_COLUMNS
from medsleep.archive.restore import restore
from medsleep.consolidate.job import consolidate
from medsleep.errors import ArchiveError
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.bodies import TRAIN_MIN_SAMPLES
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.timefmt import parse_iso_ms
from tests.helpers import observation, readings

UNTIL = parse_iso_ms("2027-01-01T00:00:00+00:00")


def _lines(n: int) -> list[str]:
    """Monitoring Observations with odd spacing and non-ASCII text, one a minute."""
    out = []
    for i in range(n):
        when = f"2026-01-05T{i // 60 % 24:02d}:{i % 60:02d}:00Z"
        resource = observation(
            f"hr-{i}", value=60 + i % 7, when=when, version="1", note=[{"text": "Patiënt ☺"}]
        )
        line = orjson.dumps(resource).decode()
        out.append(line.replace(',"status"', ' ,  "status"') if i % 3 == 0 else line)
    return out


def _night(db_url: str, tmp_path: Path, n: int) -> tuple[Engine, Store, dict[str, str], int]:
    engine = open_store(db_url)
    lines = _lines(n)
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert ingest_paths(engine, [path]).stored == n
    store = Store.open(db_url, tmp_path / "arch")
    report = consolidate(store, load_policy(), until_ms=UNTIL)
    assert report.collapsed > n // 2
    expected = {"Observation/" + orjson.loads(line)["id"]: line for line in lines}
    return engine, store, expected, report.run_id


def _files(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (str(n), str(s)) for n, s in conn.execute(text("SELECT name, sha256 FROM archive_file"))
        ]


def _texts_exact(engine: Engine, expected: dict[str, str]) -> None:
    stored = readings(engine)
    assert {r["resource_key"] for r in stored} == set(expected)
    assert all(r["resource_json"] == expected[r["resource_key"]] for r in stored)


@pytest.mark.parametrize("n", [200, 3 * BODIES_MIN_ROWS])  # without and with a dictionary
def test_a_night_archives_bodies_as_stored_and_restores_them_exactly(
    db_url: str, tmp_path: Path, n: int
) -> None:
    engine, store, expected, run_id = _night(db_url, tmp_path, n)
    root = tmp_path / "arch"
    for name, _ in _files(engine):
        footer = footer_metadata(root, name)
        assert format_of(footer, name) == FORMAT_BODIES
        parquet = pq.ParquetFile(root / name)
        assert BODY_COLUMN in parquet.schema_arrow.names
        assert TEXT_COLUMN not in parquet.schema_arrow.names
        dictionaries = [key for key in footer if key.startswith(DICTIONARY_KEY)]
        assert dictionaries == ([DICTIONARY_KEY + b"1"] if n > TRAIN_MIN_SAMPLES else [])
        assert parquet.metadata.num_rows >= (BODIES_MIN_ROWS if dictionaries else 1)
        # stored once, raw: not a second time in Arrow's serialised schema
        assert len(footer[b"ARROW:schema"]) < 8192  # the pandas metadata, no dictionary
        bodies = parquet.read(columns=[BODY_COLUMN]).column(0).to_pylist()
        assert max(map(len, bodies)) < min(map(len, expected.values()))  # compressed
    restore(store, run_id=run_id)
    _texts_exact(engine, expected)
    engine.dispose()


def test_a_file_restores_without_the_stores_dictionaries(db_url: str, tmp_path: Path) -> None:
    engine, _, expected, _ = _night(db_url, tmp_path, 3 * BODIES_MIN_ROWS)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM body_dictionary"))  # the store has lost them
    archived = [
        read_archived_readings(tmp_path / "arch", name, sha) for name, sha in _files(engine)
    ]
    texts = {k: t for f in archived for k, t in zip(f["resource_key"], f[TEXT_COLUMN], strict=True)}
    assert texts
    assert all(t == expected[k] for k, t in texts.items())
    assert all(list(f.columns[: len(ARCHIVE_COLUMNS)]) == list(ARCHIVE_COLUMNS) for f in archived)
    engine.dispose()


def test_a_format_1_file_still_restores_exactly(db_url: str, tmp_path: Path) -> None:
    engine, store, expected, run_id = _night(db_url, tmp_path, TRAIN_MIN_SAMPLES + 200)
    root = tmp_path / "arch"
    for name, sha in _files(engine):  # rewrite every file as medsleep wrote it before format 2
        frame = read_archived_readings(root, name, sha)[list(ARCHIVE_COLUMNS)]
        (root / name).unlink()
        old = write_archive_file(root, name, frame)
        assert FORMAT_KEY not in footer_metadata(root, name)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE archive_file SET sha256 = :s, bytes = :b WHERE name = :n"),
                {"s": old.sha256, "b": old.bytes, "n": name},
            )
    restore(store, run_id=run_id)
    _texts_exact(engine, expected)
    engine.dispose()


def test_a_small_file_keeps_texts_rather_than_a_dictionary_copy(
    db_url: str, tmp_path: Path
) -> None:
    # Two patients: one with a day's worth of readings, one with a few hundred.
    engine = open_store(db_url)
    lines = _lines(3 * BODIES_MIN_ROWS)
    few = _lines(BODIES_MIN_ROWS // 2)
    few = [line.replace("Patient/p1", "Patient/p2").replace('"hr-', '"few-') for line in few]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines + few) + "\n", encoding="utf-8")
    assert ingest_paths(engine, [path]).stored == len(lines) + len(few)
    store = Store.open(db_url, tmp_path / "arch")
    report = consolidate(store, load_policy(), until_ms=UNTIL)
    formats = {}
    for name, _ in _files(engine):
        footer = footer_metadata(tmp_path / "arch", name)
        rows = pq.ParquetFile(tmp_path / "arch" / name).metadata.num_rows
        formats[rows >= BODIES_MIN_ROWS] = format_of(footer, name)
        assert not any(key.startswith(DICTIONARY_KEY) for key in footer) or rows >= BODIES_MIN_ROWS
    assert formats == {True: FORMAT_BODIES, False: 1}
    restore(store, run_id=report.run_id)
    every = {"Observation/" + orjson.loads(line)["id"]: line for line in lines + few}
    _texts_exact(engine, every)
    engine.dispose()


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"id": [1], "resource_key": ["Observation/a"]})
    written = write_archive_file(tmp_path, "x.parquet", frame, metadata={FORMAT_KEY: b"3"})
    with pytest.raises(ArchiveError, match="format 3"):
        read_archived_readings(tmp_path, "x.parquet", written.sha256)


def test_a_body_that_does_not_decompress_is_an_archive_error(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {"id": [1], "resource_key": ["Observation/a"], BODY_COLUMN: [b"\x01not zstd"]}
    )
    meta = {FORMAT_KEY: str(FORMAT_BODIES).encode()}
    written = write_archive_file(tmp_path, "x.parquet", frame, metadata=meta)
    with pytest.raises(ArchiveError, match="does not decompress"):
        read_archived_readings(tmp_path, "x.parquet", written.sha256)
