"""Reason rows as they are collected, and the tables handed out: reasons and band labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from medsleep.detect.rules import FloatArray, IntArray

KINDS = ("rule", "detector", "artifact", "context", "sparse")
"""Values of ``reasons.kind``."""

ARTIFACT_BAND = "artifact"
"""Band of the readings inside a sensor-off run (collapsed, not retained)."""


@dataclass
class Reasons:
    """Reason rows being collected, as parallel arrays (positions in sorted order)."""

    positions: list[IntArray] = field(default_factory=list)
    kinds: list[IntArray] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    rule_index: list[IntArray] = field(default_factory=list)
    scores: list[FloatArray] = field(default_factory=list)
    thresholds: list[FloatArray] = field(default_factory=list)
    context_of: list[IntArray] = field(default_factory=list)

    def add(
        self,
        positions: IntArray,
        kind: str,
        rule: str,
        scores: FloatArray | float,
        thresholds: FloatArray | float,
        context_of: IntArray | None = None,
    ) -> None:
        n = positions.size
        if n == 0:
            return
        if rule not in self.rules:
            self.rules.append(rule)
        self.positions.append(positions.astype(np.int64, copy=False))
        self.kinds.append(np.full(n, KINDS.index(kind), dtype=np.int64))
        self.rule_index.append(np.full(n, self.rules.index(rule), dtype=np.int64))
        self.scores.append(np.broadcast_to(np.asarray(scores, dtype=np.float64), (n,)))
        self.thresholds.append(np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n,)))
        self.context_of.append(np.full(n, -1, dtype=np.int64) if context_of is None else context_of)

    def concat(self, name: str) -> IntArray:
        parts: list[IntArray] = getattr(self, name)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def reasons_frame(reasons: Reasons, ids: IntArray, scores: IntArray) -> pd.DataFrame:
    """The reasons table: one row per (reading, reason), by reading id then kind.

    ``ids`` and ``scores`` (NEWS2 sub-scores, negative for none) are per sorted position.
    """
    positions = reasons.concat("positions")
    kinds = reasons.concat("kinds")
    rule_index = reasons.concat("rule_index")
    context_of = reasons.concat("context_of")
    score = np.concatenate(reasons.scores) if reasons.scores else np.empty(0)
    threshold = np.concatenate(reasons.thresholds) if reasons.thresholds else np.empty(0)
    rule_names = np.array(reasons.rules or [""], dtype=object)
    reading_id = ids[positions]
    order = np.lexsort((kinds, reading_id))
    positions, kinds, rule_index, context_of = (
        positions[order],
        kinds[order],
        rule_index[order],
        context_of[order],
    )
    sub = scores[positions]
    news2 = pd.array(sub, dtype="Int64")
    news2[sub < 0] = pd.NA
    context = pd.array(context_of, dtype="Int64")
    context[context_of < 0] = pd.NA
    return pd.DataFrame(
        {
            "reading_id": reading_id[order],
            "kind": pd.array(np.array(KINDS, dtype=object)[kinds], dtype="str"),
            "rule": pd.array(rule_names[rule_index], dtype="str"),
            "score": score[order],
            "threshold": threshold[order],
            "news2": news2,
            "context_of": context,
        }
    )


def band_labels_of(band: IntArray) -> npt.NDArray[np.object_]:
    """Labels of band numbers: -2 "artifact", -1 "" (no bands), k "news2-k"."""
    top = int(band.max()) if band.size else 0
    lut = np.array(
        [ARTIFACT_BAND, ""] + [f"news2-{k}" for k in range(max(top, 0) + 1)], dtype=object
    )
    return lut[band + 2]
