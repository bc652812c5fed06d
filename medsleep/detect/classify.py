"""Classify one patient's readings: which to keep, why, and which band the others belong to.

``classify_patient`` runs the guard rules, the per-series PyOD detectors, the multivariate
detector and the context window over one patient's frame and returns ``PatientDecisions``.
Everything works on numpy arrays in (code, time) order; Python loops run over codes only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from medsleep.detect.contract import Finding, Series
from medsleep.detect.multivariate import judge_multivariate
from medsleep.detect.reasons import Reasons, band_labels_of, reasons_frame
from medsleep.detect.registry import FOLLOW_UP_RULES, SERIES_RULES
from medsleep.detect.rules import NO_SCORE, IntArray
from medsleep.policy import Policy

_ANCHOR_KINDS = frozenset(("rule", "detector"))  # get context around them


@dataclass(frozen=True, eq=False)
class PatientDecisions:
    """What ``classify_patient`` decided for one patient.

    ``reasons`` has one row per (retained reading, reason): ``reading_id``, ``kind`` (rule,
    detector, artifact, context), ``rule``, ``score``, ``threshold``, ``news2``, ``context_of``.
    ``band`` is aligned to the input frame's index: "news2-0".."news2-3" for banded codes,
    "artifact" inside a sensor-off run, "" otherwise. ``news2`` is the sub-score per reading
    (NA without bands or when implausible). ``retained_ids`` are the distinct retained ids.
    """

    reasons: pd.DataFrame
    band: pd.Series
    news2: pd.Series
    series_clinical: int = 0
    """Series judged by clinical rules (catalogue or policy) as well as statistics."""
    series_statistical: int = 0
    """Series of codes no catalogue or policy table knows: judged by statistics alone."""
    retained_ids: IntArray = field(init=False)

    def __post_init__(self) -> None:
        ids = np.unique(self.reasons["reading_id"].to_numpy(dtype=np.int64))
        object.__setattr__(self, "retained_ids", ids)


def classify_patient(frame: pd.DataFrame, policy: Policy) -> PatientDecisions:
    """Decide which of one patient's readings to retain, with reasons, and band the rest.

    ``frame`` has columns ``id`` (int64), ``code`` (str), ``t`` (int64 epoch ms), ``value``
    (float64), ideally sorted by code then t (it is sorted here if not); optionally the
    source's own ``interpretation`` and ``reference_range`` (str, "" for none).

    >>> from medsleep.policy import load_policy
    >>> frame = pd.DataFrame({"id": [1, 2], "code": ["8867-4"] * 2,
    ...                       "t": [0, 60_000], "value": [72.0, 140.0]})
    >>> decisions = classify_patient(frame, load_policy())
    >>> decisions.reasons[["reading_id", "kind", "rule", "context_of"]].values.tolist()
    [[1, 'context', 'context', 2], [2, 'rule', 'news2-critical', <NA>]]
    >>> decisions.band.tolist()
    ['news2-0', 'news2-3']
    """
    n = len(frame)
    if n == 0:
        return PatientDecisions(
            reasons_frame(Reasons(), np.empty(0, np.int64), np.empty(0, np.int64)),
            pd.Series([], index=frame.index, dtype="str", name="band"),
            pd.Series([], index=frame.index, dtype="Int64", name="news2"),
        )
    code_ids, uniques = pd.factorize(frame["code"], sort=False)
    t = frame["t"].to_numpy(dtype=np.int64)
    order = _sort_order(code_ids, t)
    ids = frame["id"].to_numpy(dtype=np.int64)
    values = frame["value"].to_numpy(dtype=np.float64)
    if order is not None:
        code_ids, t, ids, values = code_ids[order], t[order], ids[order], values[order]
    judged = _source_judgement(frame, order)

    bounds = np.flatnonzero(np.diff(code_ids)) + 1
    starts = np.concatenate(([0], bounds)).astype(np.int64)
    stops = np.concatenate((bounds, [n])).astype(np.int64)
    names = [str(uniques[code_ids[s]]) for s in starts]
    series = [
        Series(
            name,
            t[s:e],
            values[s:e],
            policy.rules_for(name),
            policy.artifact_run_min,
            interpretation=None if judged is None else judged[0][s:e],
            reference_range=None if judged is None else judged[1][s:e],
        )
        for name, s, e in zip(names, starts, stops, strict=True)
    ]

    band = np.full(n, NO_SCORE, dtype=np.int64)  # -2 artifact run, -1 none, k news2-k
    scores = np.full(n, NO_SCORE, dtype=np.int64)
    own: list[list[Finding]] = [[] for _ in series]
    for i, s in enumerate(series):
        band[starts[i] : stops[i]] = s.band
        scores[starts[i] : stops[i]] = s.news2
        for rule in SERIES_RULES:
            own[i].extend(rule.judge(s, policy))
    multivariate = judge_multivariate(series, policy)
    follow_up: list[list[Finding]] = []
    for s, first, then in zip(series, own, _by_index(multivariate, len(series)), strict=True):
        known = _with_kept(s, first + then)
        follow_up.append([f for rule in FOLLOW_UP_RULES for f in rule.judge(known, policy)])

    # Reason rows in a stable order: each series' own rules, the multivariate detector, then
    # the follow-up rules (context).
    reasons = Reasons()
    for stage in (own, _by_index(multivariate, len(series)), follow_up):
        for offset, findings in zip(starts, stage, strict=True):
            for finding in findings:
                _add(reasons, finding, int(offset), ids)

    table = reasons_frame(reasons, ids, scores)
    band_labels = band_labels_of(band)
    news2 = pd.array(scores, dtype="Int64")
    news2[scores < 0] = pd.NA
    if order is not None:
        inverse = np.empty_like(order)
        inverse[order] = np.arange(n)
        band_labels = band_labels[inverse]
        news2 = news2[inverse]
    clinical = sum(1 for s in series if s.rules.clinical)
    return PatientDecisions(
        table,
        pd.Series(band_labels, index=frame.index, dtype="str", name="band"),
        pd.Series(news2, index=frame.index, name="news2"),
        series_clinical=clinical,
        series_statistical=len(series) - clinical,
    )


def _sort_order(code_ids: IntArray, t: IntArray) -> IntArray | None:
    """Permutation sorting by (code, t), or None when already grouped by code and time-ordered.

    ``pd.factorize`` numbers codes by first appearance, so a frame grouped by code has
    non-decreasing code numbers whatever the codes' alphabetical order.
    """
    code_step = np.diff(code_ids)
    if np.all(code_step >= 0) and np.all((np.diff(t) >= 0) | (code_step != 0)):
        return None
    return np.lexsort((t, code_ids)).astype(np.int64)


def _source_judgement(
    frame: pd.DataFrame, order: IntArray | None
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]] | None:
    """The frame's ``interpretation`` and ``reference_range`` columns in sorted order, or None
    when it has neither or every value is empty (the usual monitoring stream)."""
    if "interpretation" not in frame.columns or "reference_range" not in frame.columns:
        return None
    interpretation = frame["interpretation"].to_numpy(dtype=object)
    reference = frame["reference_range"].to_numpy(dtype=object)
    if not (interpretation.astype(bool).any() or reference.astype(bool).any()):
        return None
    if order is not None:
        interpretation, reference = interpretation[order], reference[order]
    return interpretation, reference


def _by_index(found: dict[int, list[Finding]], n: int) -> list[list[Finding]]:
    return [found.get(i, []) for i in range(n)]


def _with_kept(series: Series, findings: list[Finding]) -> Series:
    """``series`` with ``anchors`` (kept by a rule or detector) and ``kept`` (for any reason)."""
    kept = np.zeros(series.size, dtype=np.bool_)
    anchors = np.zeros(series.size, dtype=np.bool_)
    for finding in findings:
        kept[finding.positions] = True
        if finding.kind in _ANCHOR_KINDS and finding.anchor:
            anchors[finding.positions] = True
    return replace(series, anchors=anchors, kept=kept)


def _add(reasons: Reasons, finding: Finding, offset: int, ids: IntArray) -> None:
    """Add a finding's rows, positions shifted from its series into the patient's arrays."""
    context_of = None if finding.context_of is None else ids[finding.context_of + offset]
    reasons.add(
        finding.positions + offset,
        finding.kind,
        finding.rule,
        finding.scores,
        finding.thresholds,
        context_of,
    )
