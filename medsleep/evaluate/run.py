"""``medsleep evaluate``: ingest into a scratch store, consolidate, score medsleep and the
three peers on the same readings. ``benchmarks/quality.py`` runs the same functions.

The scratch store is a SQLite file in a temporary folder (its archive beside it), removed
afterwards; the site's own store is never touched.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from medsleep.audit import append_with_retry
from medsleep.consolidate.executors import ExecutorSpec
from medsleep.consolidate.job import ConsolidationReport, consolidate
from medsleep.errors import InputError
from medsleep.evaluate.labels import Windows, load_labels
from medsleep.evaluate.peers import (
    PeerResult,
    hourly_downsample,
    news2_rules,
    swinging_door_matched,
)
from medsleep.evaluate.scoring import BoolArray, Labels, compression, score_labelled
from medsleep.evaluate.windows import window_score
from medsleep.ingest import IngestReport, ingest_paths
from medsleep.policy import Policy
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.tables import READING, SUMMARY, ReadingState, SummaryState


class NoReadingsError(InputError):
    """The inputs of an evaluation hold no reading to consolidate: nothing can be scored."""


# Consolidate everything ingested, whatever its dates: the window ends far in the future.
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z


@dataclass(frozen=True, eq=False)
class ScratchRun:
    """The readings in (``id``, ``patient``, ``code``, ``t``, ``value``, ``resource_key``),
    which of them medsleep kept raw, its active summaries and the two reports."""

    readings: pd.DataFrame
    kept: BoolArray
    summaries: int
    ingest: IngestReport
    report: ConsolidationReport


def consolidate_scratch(
    inputs: Sequence[str | Path], work: Path, policy: Policy, executor: ExecutorSpec | None = None
) -> ScratchRun:
    """Ingest ``inputs`` into a new SQLite store in ``work`` and consolidate all of it."""
    url = f"sqlite:///{work / 'scratch.db'}"
    engine = open_store(url)
    try:
        ingested = ingest_paths(engine, [str(p) for p in inputs], actor="evaluate")
        cols = [READING.c.id, READING.c.patient, READING.c.code, READING.c.effective_ms]
        query = select(*cols, READING.c.value, READING.c.resource_key).where(
            READING.c.state == ReadingState.RAW
        )
        with engine.connect() as conn:
            rows = conn.execute(query.order_by(READING.c.id)).all()
        readings = pd.DataFrame(
            rows, columns=["id", "patient", "code", "t", "value", "resource_key"]
        )
        report = consolidate(
            Store(engine, work / "archive", actor="evaluate"),
            policy,
            until_ms=FAR_FUTURE_MS,
            executor=executor,
        )
        with engine.connect() as conn:
            kept_ids = conn.execute(
                select(READING.c.id).where(READING.c.state == ReadingState.RETAINED)
            ).scalars()
            kept = readings["id"].isin(list(kept_ids)).to_numpy()
            summaries = len(
                conn.execute(
                    select(SUMMARY.c.id).where(SUMMARY.c.state == SummaryState.ACTIVE)
                ).all()
            )
    finally:
        engine.dispose()
    return ScratchRun(readings, kept, summaries, ingested, report)


def closest_rules(readings: pd.DataFrame, policy: Policy, target: float) -> PeerResult:
    """The NEWS2/critical rules peer with the score k in 1..3 closest to ``target``×."""
    by_k = [news2_rules(readings, policy, k) for k in (1, 2, 3)]
    return min(
        by_k,
        key=lambda p: abs(compression(len(readings), int(p.kept.sum()), p.summaries) - target),
    )


def score_ids(run: ScratchRun, labels: Labels, policy: Policy) -> list[dict[str, Any]]:
    """medsleep and the peers against labelled reading ids (or one event). The rules peer
    keeps score >= 3: the real-labelled cases label score-3 readings."""
    keys = run.readings["resource_key"].tolist()
    ours = score_labelled(keys, run.kept, run.summaries, labels)
    rows: list[dict[str, Any]] = [{"method": "medsleep", "setting": "", **ours.__dict__}]
    peers = [
        hourly_downsample(run.readings),
        news2_rules(run.readings, policy, 3),
        swinging_door_matched(run.readings, ours.compression),
    ]
    for peer in peers:
        score = score_labelled(keys, peer.kept, peer.summaries, labels)
        rows.append({"method": peer.name, "setting": peer.setting, **score.__dict__})
    return rows


def score_windows(run: ScratchRun, windows: Windows, policy: Policy) -> list[dict[str, Any]]:
    """medsleep and the peers against labelled windows. The rules peer takes the score k in
    1..3 that compresses closest to medsleep; the swinging door is bisected to it."""
    readings = run.readings
    ours = window_score(readings, run.kept, run.summaries, windows.events, windows.artifacts)
    rows: list[dict[str, Any]] = [{"method": "medsleep", "setting": "", **ours}]
    target = float(ours["compression"])
    peers = [
        hourly_downsample(readings),
        swinging_door_matched(readings, target),
        closest_rules(readings, policy, target),
    ]
    for peer in peers:
        score = window_score(readings, peer.kept, peer.summaries, windows.events, windows.artifacts)
        rows.append({"method": peer.name, "setting": peer.setting, **score})
    return rows


@dataclass
class EvaluationReport:
    inputs: list[str]
    labels: str
    labels_kind: str  # "ids", "event" or "windows"
    policy_digest: str
    readings: int
    quarantined: int
    run_status: str
    methods: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, float):
                return None if np.isnan(value) else round(value, 4)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {
            "inputs": self.inputs,
            "labels": self.labels,
            "labels_kind": self.labels_kind,
            "policy": self.policy_digest,
            "readings": self.readings,
            "quarantined": self.quarantined,
            "run_status": self.run_status,
            "methods": [{k: plain(v) for k, v in m.items()} for m in self.methods],
        }


EVALUATION_ACTION = "evaluate.report"


def record_evaluation(engine: Engine, report: EvaluationReport, actor: str, at_ms: int) -> int:
    """Keep ``report`` as one ``evaluate.report`` audit event on the site's store (the
    dashboard's compliance page shows the last one); returns its seq."""
    return append_with_retry(
        engine, actor=actor, action=EVALUATION_ACTION, details=report.as_json(), at_ms=at_ms
    )


def evaluate(
    inputs: Sequence[str | Path],
    labels_path: Path,
    policy: Policy,
    *,
    executor: ExecutorSpec | None = None,
    work: Path | None = None,
) -> EvaluationReport:
    """Score medsleep with ``policy`` and the three peers on ``inputs`` against the labels.

    ``work`` holds the scratch store (default: a temporary folder, removed afterwards).
    Raises LabelsFileError for a labels file of neither format, NoReadingsError when the
    inputs hold no reading.
    """
    labels = load_labels(labels_path)
    if work is None:
        with tempfile.TemporaryDirectory(prefix="medsleep-evaluate-") as tmp:
            return evaluate(inputs, labels_path, policy, executor=executor, work=Path(tmp))
    run = consolidate_scratch(inputs, work, policy, executor)
    if run.readings.empty:
        raise NoReadingsError(
            f"no readings to evaluate in {', '.join(map(str, inputs))} "
            f"({run.ingest.quarantined} resources quarantined, {run.ingest.skipped} skipped)"
        )
    if isinstance(labels, Windows):
        kind, methods = "windows", score_windows(run, labels, policy)
    else:
        kind = "event" if labels.event else "ids"
        methods = score_ids(run, labels, policy)
    return EvaluationReport(
        [str(p) for p in inputs],
        str(labels_path),
        kind,
        policy.digest,
        len(run.readings),
        run.ingest.quarantined,
        str(run.report.status),
        methods,
    )
