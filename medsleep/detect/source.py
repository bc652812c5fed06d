"""Source rule: the source's own judgement counts. A reading the source flags abnormal
(``interpretation`` H, L, HH, LL, A, AA, ...) or that lies outside the source's own
``referenceRange`` is kept, with that as the reason.

This holds for every code, catalogued or not: the sender knows its analyser and its patient
population; medsleep's catalogue only knows the code.
"""

from __future__ import annotations

import numpy as np

from medsleep.detect.contract import Finding, Series
from medsleep.policy import Policy

ABNORMAL_CODES = frozenset(
    {"A", "AA", "H", "HH", "HU", "L", "LL", "LU", "W", "POS", "DET", "R", "IND", ">", "<"}
)
"""Interpretation codes that say the value is not normal (HL7 v3 ObservationInterpretation:
abnormal, critical abnormal, high, critically high, significantly high, low, ..., worse,
positive, detected, resistant, indeterminate, off scale high/low)."""


def parse_reference(text: str) -> tuple[float, float]:
    """``"low..high"`` back to bounds (an open side is -inf or inf).

    >>> parse_reference("3.5..5.1"), parse_reference("..140.0")
    ((3.5, 5.1), (-inf, 140.0))
    """
    low, _, high = text.partition("..")
    return (float(low) if low else float("-inf"), float(high) if high else float("inf"))


class SourceJudgement:
    name = "source"

    def judge(self, series: Series, policy: Policy) -> list[Finding]:
        found: list[Finding] = []
        v = series.values
        if series.interpretation is not None:
            flagged = np.array(
                [bool(ABNORMAL_CODES.intersection(str(c).split())) for c in series.interpretation],
                dtype=np.bool_,
            )
            pos = np.flatnonzero(flagged & ~np.isnan(v)).astype(np.int64)
            found.append(Finding(pos, "rule", "source-interpretation", v[pos]))
        if series.reference_range is not None:
            texts = series.reference_range
            has = np.flatnonzero(texts.astype(bool))
            bounds = np.array([parse_reference(str(texts[i])) for i in has]).reshape(-1, 2)
            low, high = bounds[:, 0], bounds[:, 1]
            below, above = v[has] < low, v[has] > high
            out = below | above
            pos = has[out].astype(np.int64)
            limit = np.where(below, low, high)[out]
            found.append(Finding(pos, "rule", "source-reference", v[pos], limit))
        return found
