"""How well a consolidation kept what was labelled, and how much it compressed. Pure.

The rules of ``fixtures/real-labelled/README.md``, the same for medsleep and every peer:

- **compression** = readings in ÷ (readings kept raw + summary rows);
- **recall** = labelled resources with a reading kept raw ÷ labelled resources; for an
  ``event`` case, 1 when any reading inside the event is kept, else 0.

A label names an Observation by its ``id``; medsleep's readings carry it as ``resource_key``
``Observation/<id>`` (a blood-pressure panel is one resource with two readings: keeping either
keeps the resource).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Labels:
    """The labelled resource ids of one case, and whether they form one event."""

    ids: frozenset[str]
    event: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Labels:
        """From a ``*.labels.json`` document (``anomalous_ids``, optional ``event``)."""
        return cls(frozenset(str(i) for i in data["anomalous_ids"]), bool(data.get("event")))


@dataclass(frozen=True)
class Score:
    compression: float
    recall: float
    labelled: int
    labelled_kept: int


def compression(readings_in: int, kept_raw: int, summaries: int) -> float:
    """Readings in per row left (raw readings kept plus summary rows).

    >>> compression(100, 3, 2)
    20.0
    """
    return readings_in / max(1, kept_raw + summaries)


def resource_id(resource_key: str) -> str:
    """The Observation id in a reading's ``resource_key`` (``Observation/<id>``)."""
    return resource_key.removeprefix("Observation/")


def score_labelled(
    resource_keys: Sequence[str], kept: BoolArray, summaries: int, labels: Labels
) -> Score:
    """Score one case: ``resource_keys`` and ``kept`` (kept raw) are per reading in.

    >>> labels = Labels(frozenset({"a", "c"}))
    >>> score_labelled(["Observation/a", "Observation/b", "Observation/c"],
    ...                np.array([True, False, False]), 1, labels)
    Score(compression=1.5, recall=0.5, labelled=2, labelled_kept=1)
    """
    ids = np.array([resource_id(k) for k in resource_keys], dtype=object)
    labelled = np.isin(ids, np.array(sorted(labels.ids), dtype=object))
    kept_ids = set(ids[labelled & kept].tolist())
    n_labelled = len(labels.ids)
    if labels.event:
        recall = 1.0 if kept_ids else 0.0
    else:
        recall = len(kept_ids) / n_labelled if n_labelled else float("nan")
    return Score(
        compression(len(ids), int(kept.sum()), summaries), recall, n_labelled, len(kept_ids)
    )
