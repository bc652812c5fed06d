"""The shard's archive rows, built column by column in Arrow, are the file pandas would
have written: same bytes, same frame read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from medsleep.archive.body_format import STORED_COLUMNS, body_metadata
from medsleep.archive.files import read_archived_readings, write_archive_file
from medsleep.archive.index import ARCHIVE_COLUMNS
from medsleep.consolidate.shard import ShardTask, _archive_rows, load_raw
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.bodies import dictionaries_of
from medsleep.store.tables import READING
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SAMPLE

UNTIL = parse_iso_ms("2030-01-01T00:00:00+00:00")


def _collapse(sqlite_url: str, engine: Engine) -> tuple[ShardTask, pd.DataFrame, dict[int, bytes]]:
    ingest_paths(engine, [str(SAMPLE)])
    with engine.connect() as conn:
        patient = conn.execute(select(READING.c.patient).limit(1)).scalar_one()
        task = ShardTask(sqlite_url, "unused", 7, 1, patient, UNTIL, load_policy(), 0)
        raw = load_raw(conn, task)
        dictionaries = dictionaries_of(conn)
    bands = np.where(np.arange(len(raw)) % 3 == 0, "high", "normal").astype(object)
    frame = raw.assign(band=pd.Series(bands, dtype=object))
    return task, frame.iloc[1:], dictionaries  # a cut, as a shard's collapse is


def _through_pandas(collapse: pd.DataFrame, starts: np.ndarray, run_id: int) -> pd.DataFrame:
    rows = collapse.reset_index(drop=True).assign(
        bucket_start_ms=starts, run_id=np.full(len(collapse), run_id, dtype=np.int64)
    )
    columns = STORED_COLUMNS if "resource_body" in rows.columns else ARCHIVE_COLUMNS
    return rows[list(columns)]


def test_archive_rows_make_the_file_pandas_would(
    tmp_path: Path, sqlite_url: str, sqlite_engine: Engine
) -> None:
    task, collapse, dictionaries = _collapse(sqlite_url, sqlite_engine)
    assert len(collapse) > 0
    assert dictionaries
    starts = collapse["effective_ms"].to_numpy() // 3_600_000 * 3_600_000
    meta = body_metadata(dictionaries)
    built = _archive_rows(collapse, starts, task)
    assert built.column_names == list(STORED_COLUMNS)
    arrow = write_archive_file(tmp_path / "a", "x.parquet", built, metadata=meta)
    pandas = write_archive_file(
        tmp_path / "p", "x.parquet", _through_pandas(collapse, starts, 7), metadata=meta
    )
    assert arrow.sha256 == pandas.sha256
    assert arrow.rows == len(collapse)
    back = read_archived_readings(tmp_path / "a", "x.parquet", arrow.sha256)
    assert back["id"].tolist() == collapse["id"].tolist()
    assert set(back["patient"]) == {task.patient}
    assert set(back["run_id"]) == {7}
    assert back["band"].tolist() == collapse["band"].tolist()


def test_archive_rows_of_texts_format_one(
    tmp_path: Path, sqlite_url: str, sqlite_engine: Engine
) -> None:
    task, collapse, _ = _collapse(sqlite_url, sqlite_engine)
    texts = collapse.drop(columns=["resource_body"]).assign(
        resource_json=pd.Series(["{}"] * len(collapse), dtype=object, index=collapse.index)
    )
    starts = np.zeros(len(texts), dtype=np.int64)
    built = _archive_rows(texts, starts, task)
    assert built.column_names == list(ARCHIVE_COLUMNS)
    arrow = write_archive_file(tmp_path / "a", "x.parquet", built)
    pandas = write_archive_file(tmp_path / "p", "x.parquet", _through_pandas(texts, starts, 7))
    assert arrow.sha256 == pandas.sha256
