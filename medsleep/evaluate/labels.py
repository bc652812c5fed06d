"""Labels files: the real-labelled JSON (reading ids, or one event) and the generator's
``labels.csv`` windows.

- ``*.json`` — ``fixtures/real-labelled/README.md``: ``{"anomalous_ids": [Observation ids],
  "event": false}``; with ``"event": true`` the ids form one event, caught by one kept reading.
- ``*.csv`` — ``medsleep fixtures generate``'s ``labels.csv``: ``event,patient,code,start,end``
  (ISO times, end exclusive); a window is caught when one of its readings is kept raw. An
  ``artifacts.csv`` of the same shape beside it marks sensor artifacts (they count as relevant
  for precision).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medsleep.errors import InputError
from medsleep.evaluate.scoring import Labels
from medsleep.timefmt import parse_iso_ms

WINDOW_COLUMNS = ("event", "patient", "code", "start", "end")


class LabelsFileError(InputError):
    """A labels file that is neither real-labelled JSON nor a labels.csv of windows."""


@dataclass(frozen=True, eq=False)
class Windows:
    """Labelled windows: ``event``, ``patient``, ``code``, ``start_ms``, ``end_ms`` (exclusive);
    ``artifacts`` (same columns) when an ``artifacts.csv`` lies beside the labels."""

    events: pd.DataFrame
    artifacts: pd.DataFrame | None = None


def read_windows(path: Path) -> pd.DataFrame:
    """A ``labels.csv`` (or ``artifacts.csv``) of windows, times as epoch ms."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        frame = pd.DataFrame(rows, columns=list(WINDOW_COLUMNS))
        if rows and not set(WINDOW_COLUMNS) <= set(rows[0]):
            raise KeyError(", ".join(sorted(set(WINDOW_COLUMNS) - set(rows[0]))))
        frame["start_ms"] = [parse_iso_ms(s.replace("Z", "+00:00")) for s in frame["start"]]
        frame["end_ms"] = [parse_iso_ms(s.replace("Z", "+00:00")) for s in frame["end"]]
    except KeyError as exc:
        raise LabelsFileError(f"{path}: labels.csv needs columns {WINDOW_COLUMNS}: {exc}") from exc
    except (ValueError, TypeError, AttributeError) as exc:
        raise LabelsFileError(f"{path}: a start or end is not an ISO time: {exc}") from exc
    return frame


def load_labels(path: Path) -> Labels | Windows:
    """The labels in ``path``: ``Labels`` for JSON, ``Windows`` for CSV.

    Raises LabelsFileError (a usage error, exit 2) when the file cannot be read as either.
    """
    if not path.is_file():
        raise LabelsFileError(f"no labels file {path}")
    if path.suffix.lower() == ".csv":
        artifacts = path.with_name("artifacts.csv")
        return Windows(read_windows(path), read_windows(artifacts) if artifacts.is_file() else None)
    try:
        return Labels.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise LabelsFileError(
            f"{path}: not a labels JSON with 'anomalous_ids' (or a labels.csv): {exc}"
        ) from exc
