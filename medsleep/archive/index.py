"""What the database knows about the archive: recorded files and the readings behind summaries."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from medsleep.archive.files import read_archived_readings
from medsleep.errors import ArchiveError
from medsleep.store.tables import ARCHIVE_FILE, READING_COLUMNS, SUMMARY, ArchiveState, SummaryState

_archive = ARCHIVE_FILE
_summary = SUMMARY
# An archive row is a reading, its resource's original text, and where it was summarised.
ARCHIVE_COLUMNS = (*READING_COLUMNS, "resource_json", "band", "bucket_start_ms", "run_id")


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
        frame = read_archived_readings(root, name, sha)
        mask = in_cells(frame, cells_by_file[name])
        parts.append(frame.loc[mask, list(ARCHIVE_COLUMNS)].assign(_file=name))
    rows = pd.concat(parts, ignore_index=True)
    expected = sum(int(s.n) for s in summaries)
    if len(rows) != expected:
        raise ArchiveError(
            f"the archive holds {len(rows)} readings for summaries of {expected} readings"
        )
    return rows


@dataclass(frozen=True)
class ActiveCells:
    """The active summaries of some cells and the archived readings behind them."""

    summary_ids: list[int]
    readings: pd.DataFrame  # ARCHIVE_COLUMNS plus ``_file``


def active_cells_of(
    conn: Connection, root: Path, patient: str, cells: set[tuple[str, str, int]]
) -> ActiveCells:
    """The active summaries of ``patient`` in the (code, unit, bucket start) ``cells``, with
    their archived readings read back (checksums verified), so that late data re-collapses a
    whole cell and its summaries stay exactly the statistics of all its normal readings.

    A cell whose archive file was purged cannot be recomputed: it is left out, and its late
    readings get a summary of their own beside the old one.
    """
    if not cells:
        return ActiveCells([], summarised_readings(conn, root, []))
    starts = [start for _, _, start in cells]
    candidates = conn.execute(
        select(_summary).where(
            _summary.c.patient == patient,
            _summary.c.state == SummaryState.ACTIVE,
            _summary.c.bucket_start_ms.between(min(starts), max(starts)),
        )
    ).all()
    found = [s for s in candidates if (s.code, s.unit, int(s.bucket_start_ms)) in cells]
    purged = purged_files(conn, {name for s in found for name in json.loads(s.archive_files)})
    found = [s for s in found if not purged & set(json.loads(s.archive_files))]
    return ActiveCells([int(row.id) for row in found], summarised_readings(conn, root, found))
