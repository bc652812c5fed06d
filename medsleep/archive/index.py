"""What the database knows about the archive: recorded files and the readings behind summaries."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from medsleep.archive.files import read_archive_file
from medsleep.errors import ArchiveError
from medsleep.store.tables import ARCHIVE_FILE, READING_COLUMNS, ArchiveState

_archive = ARCHIVE_FILE
# An archive row is a reading plus where it was summarised.
ARCHIVE_COLUMNS = (*READING_COLUMNS, "band", "bucket_start_ms", "run_id")


def file_records(conn: Connection, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """name -> (sha256, state) of the recorded archive files among ``names``."""
    wanted = sorted(set(names))
    query = select(_archive.c.name, _archive.c.sha256, _archive.c.state).where(
        _archive.c.name.in_(wanted)
    )
    return {str(name): (str(sha), str(state)) for name, sha, state in conn.execute(query)}


def purged_files(conn: Connection, names: Iterable[str]) -> set[str]:
    return {
        name
        for name, (_, state) in file_records(conn, names).items()
        if state == ArchiveState.PURGED
    }


Cell = tuple[str, str, str, str, int]  # patient, code, unit, band, bucket start (ms)


def in_cells(frame: pd.DataFrame, cells: set[Cell]) -> np.ndarray:
    """Which archive rows belong to one of ``cells``."""
    keys = zip(
        frame["patient"].tolist(),
        frame["code"].tolist(),
        frame["unit"].tolist(),
        frame["band"].tolist(),
        frame["bucket_start_ms"].astype(np.int64).tolist(),
        strict=True,
    )
    return np.fromiter((key in cells for key in keys), dtype=bool, count=len(frame))


def summarised_readings(conn: Connection, root: Path, summaries: Sequence[Any]) -> pd.DataFrame:
    """The archived readings behind ``summaries`` (rows of the summary table), each file
    checked against its recorded sha256; column ``_file`` says which file held each reading."""
    empty = pd.DataFrame(columns=[*ARCHIVE_COLUMNS, "_file"])
    if not summaries:
        return empty
    # A cell's readings are read only from the files its *active* summary lists: after a
    # partial restore and a new run, an older file still holds copies of restored readings.
    cells_by_file: dict[str, set[Cell]] = {}
    for s in summaries:
        cell = (s.patient, s.code, s.unit, s.band, int(s.bucket_start_ms))
        for name in json.loads(s.archive_files):
            cells_by_file.setdefault(name, set()).add(cell)
    names = sorted(cells_by_file)
    records = file_records(conn, names)
    parts = []
    for name in names:
        if name not in records:
            raise ArchiveError(f"a summary refers to archive file {name}, which is not recorded")
        sha, state = records[name]
        if state == ArchiveState.PURGED:
            raise ArchiveError(f"archive file {name} was purged under the retention policy")
        frame = read_archive_file(root, name, sha)
        mask = in_cells(frame, cells_by_file[name])
        parts.append(frame.loc[mask, list(ARCHIVE_COLUMNS)].assign(_file=name))
    rows = pd.concat(parts, ignore_index=True)
    expected = sum(int(s.n) for s in summaries)
    if len(rows) != expected:
        raise ArchiveError(
            f"the archive holds {len(rows)} readings for summaries of {expected} readings"
        )
    return rows
