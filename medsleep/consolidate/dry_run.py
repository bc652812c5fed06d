"""What a consolidation would do, changing nothing: ``consolidate --dry-run``.

Every shard makes the real run's decision (``shard.decide_shard``: rules, detectors, sparse
cells, late data, summaries, episodes) and reports it instead of carrying it out, so the
figures are the ones the real run would produce. Nothing is written: no run row, no archive
file, no reading touched, and the consolidation lock is not taken (a dry run never blocks or
waits for the night's run). With ``record=True`` one ``consolidate.dry-run`` audit event keeps
the report, which the dashboard's compliance page shows.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from medsleep.archive.holds import is_held
from medsleep.audit import append_with_retry
from medsleep.consolidate.executors import ExecutorSpec, run_tasks
from medsleep.consolidate.job import (
    ConsolidationReport,
    Progress,
    ShardFailure,
    check_policy_detectors,
    default_until_ms,
    held_patients,
    patients_with_backlog,
    raw_count,
)
from medsleep.consolidate.shard import ShardDecision, ShardResult, ShardTask, decide_shard, load_raw
from medsleep.detect import warm_up_detectors
from medsleep.policy import Policy
from medsleep.store.engine import worker_engine
from medsleep.store.handle import Store

log = logging.getLogger(__name__)
DRY_RUN_ACTION = "consolidate.dry-run"
DRY_RUN_STATUS = "dry-run"


@dataclass(frozen=True)
class PreviewTask:
    shard: ShardTask
    with_reasons: bool = False  # also return every retained reading's reasons (policy diff)


@dataclass(frozen=True)
class ShardPreview:
    """One patient's decision as figures: what a run would keep, collapse and archive."""

    result: ShardResult
    by_reason: dict[str, int] = field(default_factory=dict)  # "kind:rule" -> readings
    # reading id -> its reasons ("kind:rule", sorted), only with ``PreviewTask.with_reasons``
    retained: dict[int, tuple[str, ...]] = field(default_factory=dict)


def reasons_by_reading(decision: ShardDecision) -> dict[int, tuple[str, ...]]:
    """Every retained reading's reasons as ``kind:rule``, the sparse ones included."""
    reasons = decision.decisions.reasons
    pairs = set(
        zip(
            reasons["reading_id"].astype(int).tolist(),
            (reasons["kind"].astype(str) + ":" + reasons["rule"].astype(str)).tolist(),
            strict=True,
        )
    )
    pairs |= {(int(i), "sparse:too-sparse") for i in decision.sparse_rows["id"].tolist()}
    out: dict[int, list[str]] = {}
    for reading, reason in pairs:
        out.setdefault(reading, []).append(reason)
    return {reading: tuple(sorted(names)) for reading, names in out.items()}


def preview_shard(task: PreviewTask) -> ShardPreview | ShardFailure:
    """One patient's decision, reported, never written (picklable, runs in any process)."""
    shard = task.shard
    engine = worker_engine(shard.db_url)
    try:
        with engine.connect() as conn:
            if is_held(conn, shard.patient):
                return ShardPreview(ShardResult(shard.patient, held=1))
            raw = load_raw(conn, shard)
            if raw.empty:
                return ShardPreview(ShardResult(shard.patient))
            decision = decide_shard(conn, shard, raw)
            conn.rollback()
    except Exception as exc:  # noqa: BLE001  (reported as the real run reports a failed shard)
        log.warning("dry run of shard %d failed: %s", shard.shard, type(exc).__name__)
        return ShardFailure(shard.patient, f"{type(exc).__name__}: {exc}"[:500])
    retained = reasons_by_reading(decision)
    counts = Counter(reason for names in retained.values() for reason in names)
    archived = len(decision.collapse)
    return ShardPreview(
        decision.result(shard.patient, archived),
        dict(sorted(counts.items())),
        retained if task.with_reasons else {},
    )


def compression(readings_in: int, retained: int, summaries: int) -> float:
    """Readings in per row left in the hot store (kept raw plus summaries)."""
    return readings_in / max(1, retained + summaries)


@dataclass
class DryRunReport:
    """The totals a run would report (``ConsolidationReport`` fields), per reason and patient."""

    totals: ConsolidationReport
    policy_digest: str
    executor: str
    by_reason: Counter[str] = field(default_factory=Counter)
    patients: list[dict[str, Any]] = field(default_factory=list)
    retained: dict[str, dict[int, tuple[str, ...]]] = field(default_factory=dict)

    def add(self, preview: ShardPreview | ShardFailure) -> None:
        if isinstance(preview, ShardFailure):
            self.totals.add(preview)
            return
        self.totals.add(preview.result)
        result = preview.result
        self.by_reason.update(preview.by_reason)
        if preview.retained:
            self.retained[result.patient] = preview.retained
        if result.readings_in or result.held:
            self.patients.append(
                {
                    "patient": result.patient,
                    "readings_in": result.readings_in,
                    "retained": result.retained,
                    "collapsed": result.collapsed,
                    "summaries": result.summaries,
                    "archived": result.archived,
                    "episodes": result.episodes,
                    "sparse": result.sparse,
                    "held": bool(result.held),
                    "compression": round(
                        compression(result.readings_in, result.retained, result.summaries), 2
                    ),
                    "by_reason": preview.by_reason,
                }
            )

    @property
    def compression(self) -> float:
        t = self.totals
        return compression(t.readings_in, t.retained, t.summaries)

    def as_json(self) -> dict[str, Any]:
        """One JSON object: the real run's report keys, then ``compression``, ``by_reason``
        (readings per ``kind:rule``; a reading kept for two reasons counts in both) and
        ``patients``."""
        out = self.totals.as_json()
        for key in ("store_bytes_before", "store_bytes_after", "space_returned", "shards_done"):
            out.pop(key, None)  # nothing is returned or committed by a dry run
        return {
            **out,
            "dry_run": True,
            "policy": self.policy_digest,
            "executor": self.executor,
            "compression": round(self.compression, 2),
            "by_reason": dict(sorted(self.by_reason.items())),
            "patients": sorted(self.patients, key=lambda p: str(p["patient"])),
        }


def dry_run(
    store: Store,
    policy: Policy,
    *,
    until_ms: int | None = None,
    executor: ExecutorSpec | None = None,
    progress: Progress | None = None,
    record: bool = False,
    with_reasons: bool = False,
) -> DryRunReport:
    """What ``consolidate(store, policy, until_ms=..., executor=...)`` would do, now.

    ``record`` appends one ``consolidate.dry-run`` audit event holding the report (the only
    write); ``with_reasons`` keeps every retained reading's reasons in ``report.retained``.
    """
    started = time.perf_counter()
    check_policy_detectors(policy)
    spec = executor or ExecutorSpec("local")
    until = default_until_ms(policy, store.now_ms()) if until_ms is None else until_ms
    engine = store.engine
    held = held_patients(engine)
    backlog = patients_with_backlog(engine, until)
    todo = [patient for patient in backlog if patient not in held]
    totals = ConsolidationReport(
        None,
        DRY_RUN_STATUS if todo else "nothing-to-do",
        held=raw_count(engine, [p for p in backlog if p in held], until),
        shards=len(todo),
        until_ms=until,
    )
    report = DryRunReport(totals, policy.digest, str(spec))
    tasks = (
        PreviewTask(
            ShardTask(store.url, str(store.archive_root), 0, number, patient, until, policy, 0),
            with_reasons,
        )
        for number, patient in enumerate(todo, start=1)
    )
    if spec.kind == "processes" and todo:
        warm_up_detectors(policy.detector_names)
    for preview in run_tasks(spec, preview_shard, tasks):
        report.add(preview)
        if progress is not None:
            progress(totals.shards_done, totals.shards)
    totals.seconds = time.perf_counter() - started
    if record:
        append_with_retry(
            engine,
            actor=store.actor,
            action=DRY_RUN_ACTION,
            details=report.as_json(),
            at_ms=store.now_ms(),
        )
    return report
