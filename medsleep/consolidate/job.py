"""The sleep-time job: pick the window, take the lock, consolidate shard by shard, report.

Each shard (one patient) commits on its own (see ``shard``), so a job stopped by its deadline,
a crash or SIGKILL leaves whole shards done and the rest untouched; the next run resumes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update

from medsleep.archive.holds import held_patients as patients_on_hold
from medsleep.audit import append_event
from medsleep.consolidate.executors import ExecutorSpec, run_tasks
from medsleep.consolidate.shard import ShardResult, ShardTask, consolidate_shard
from medsleep.detect import check_detector_name, warm_up_detectors
from medsleep.policy import Policy
from medsleep.store.handle import Clock, Store
from medsleep.store.locking import consolidation_lock
from medsleep.store.space import return_space, store_bytes
from medsleep.store.tables import READING, RUN, ReadingState, RunStatus

log = logging.getLogger(__name__)
_reading = READING
_run = RUN
Progress = Callable[[int, int], None]  # (shards done, shards total)


@dataclass
class ConsolidationReport:
    run_id: int | None
    status: str  # committed, partial, nothing-to-do, failed
    readings_in: int = 0
    retained: int = 0
    collapsed: int = 0
    summaries: int = 0
    archived: int = 0
    held: int = 0
    seconds: float = 0.0
    shards: int = 0
    shards_done: int = 0
    superseded_summaries: int = 0
    archive_files: int = 0
    episodes: int = 0
    sparse: int = 0
    series_clinical: int = 0
    series_statistical: int = 0
    until_ms: int = 0
    held_late: list[str] = field(default_factory=list)  # put on hold while the run went on
    failed: list[dict[str, str]] = field(default_factory=list)  # shards skipped, with reasons
    # The hot store's bytes when the run began and after it returned the freed pages
    # (SQLite: the database file; see store.space).
    store_bytes_before: int = 0
    store_bytes_after: int = 0
    space_returned: bool = False

    def add(self, result: ShardResult | ShardFailure) -> None:
        if isinstance(result, ShardFailure):
            self.failed.append({"patient": result.patient, "error": result.error})
            return
        for name in (f.name for f in fields(ShardResult)):
            if name not in ("patient", "held"):
                setattr(self, name, getattr(self, name) + getattr(result, name))
        if result.held:
            self.held_late.append(result.patient)
        else:
            self.shards_done += 1

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True)
class ShardFailure:
    """A shard that could not be consolidated: its readings stay raw, the run goes on."""

    patient: str
    error: str


def consolidate_shard_or_report(task: ShardTask) -> ShardResult | ShardFailure:
    """``consolidate_shard``, turning one shard's failure into a report (picklable).

    One patient's data that breaks a step (a poisoned value, a bug) must not stop the
    night's work for every other patient; the shard rolled back, so nothing was lost.
    """
    try:
        return consolidate_shard(task)
    except Exception as exc:  # noqa: BLE001  (reported in the run, its audit event and log)
        log.warning("shard %d failed and was skipped: %s", task.shard, type(exc).__name__)
        # a database error's own message, not SQLAlchemy's (which quotes the parameters)
        reason = getattr(exc, "orig", None) or exc
        return ShardFailure(task.patient, f"{type(exc).__name__}: {reason}"[:500])


def check_policy_detectors(policy: Policy) -> None:
    """Fail before any work when the policy names a detector PyOD cannot provide."""
    check_detector_name(policy.multivariate.detector)
    for code_policy in policy.codes.values():
        check_detector_name(code_policy.detector)


def default_until_ms(policy: Policy, now_ms: int) -> int:
    return now_ms - int(policy.hot_horizon_hours * 3_600_000)


def held_patients(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return patients_on_hold(conn)


def backlog_size(engine: Engine, until_ms: int) -> int:
    """Raw readings of patients not on hold that a run with this ``until`` would consolidate."""
    held = held_patients(engine)
    return sum(n for patient, n in _backlog(engine, until_ms) if patient not in held)


def patients_with_backlog(engine: Engine, until_ms: int) -> list[str]:
    """Patients with at least one raw reading before ``until``, in id order.

    Reads only the (patient, code, time) index for the patient list, then one short indexed
    probe per patient: a GROUP BY over the table would read every reading's JSON pages.
    """
    probe = (
        select(_reading.c.id)
        .where(
            _reading.c.patient == bindparam("patient"),
            _reading.c.state == ReadingState.RAW,
            _reading.c.effective_ms < until_ms,
        )
        .limit(1)
    )
    with engine.connect() as conn:
        patients = [str(p) for (p,) in conn.execute(select(_reading.c.patient).distinct())]
        return sorted(
            p for p in patients if conn.execute(probe, {"patient": p}).first() is not None
        )


def raw_count(engine: Engine, patients: list[str], until_ms: int) -> int:
    if not patients:
        return 0
    query = select(func.count()).where(
        _reading.c.patient.in_(patients),
        _reading.c.state == ReadingState.RAW,
        _reading.c.effective_ms < until_ms,
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _backlog(engine: Engine, until_ms: int) -> list[tuple[str, int]]:
    """(patient, raw readings before ``until``) for every patient with a backlog."""
    query = (
        select(_reading.c.patient, func.count())
        .where(_reading.c.state == ReadingState.RAW, _reading.c.effective_ms < until_ms)
        .group_by(_reading.c.patient)
        .order_by(_reading.c.patient)
    )
    with engine.connect() as conn:
        return [(str(p), int(n)) for p, n in conn.execute(query)]


def _close_interrupted_runs(engine: Engine, clock: Clock) -> None:
    """Runs still 'running' while we hold the lock were killed: their commits stand, the rest
    of their shards are simply still raw."""
    with engine.begin() as conn:
        stale = [
            r[0] for r in conn.execute(select(_run.c.id).where(_run.c.status == RunStatus.RUNNING))
        ]
        for run_id in stale:
            conn.execute(
                update(_run)
                .where(_run.c.id == run_id)
                .values(
                    status=RunStatus.INTERRUPTED, finished_ms=clock(), error="process ended mid-run"
                )
            )
            append_event(
                conn,
                actor="medsleep",
                action="consolidate.interrupted",
                details={"run_id": run_id},
                at_ms=clock(),
            )


def consolidate(
    store: Store,
    policy: Policy,
    *,
    until_ms: int | None = None,
    deadline_ms: int | None = None,
    executor: ExecutorSpec | None = None,
    progress: Progress | None = None,
) -> ConsolidationReport:
    """Consolidate every patient's raw readings older than ``until_ms``.

    Raises LockHeldError when another consolidation holds the lock.
    """
    started = time.perf_counter()
    check_policy_detectors(policy)
    spec = executor or ExecutorSpec("local")
    until = default_until_ms(policy, store.now_ms()) if until_ms is None else until_ms
    with consolidation_lock(store.engine):
        bytes_before = store_bytes(store.engine)
        _close_interrupted_runs(store.engine, store.clock)
        report = _run_shards(store, policy, until, deadline_ms, spec, progress, bytes_before)
    report.seconds = time.perf_counter() - started
    return report


def _run_shards(
    store: Store,
    policy: Policy,
    until: int,
    deadline_ms: int | None,
    spec: ExecutorSpec,
    progress: Progress | None,
    bytes_before: int,
) -> ConsolidationReport:
    engine, actor, clock = store.engine, store.actor, store.clock
    held = held_patients(engine)
    backlog = patients_with_backlog(engine, until)
    todo = [patient for patient in backlog if patient not in held]
    held_readings = raw_count(engine, [p for p in backlog if p in held], until)
    if not todo:
        return ConsolidationReport(
            None,
            "nothing-to-do",
            held=held_readings,
            until_ms=until,
            store_bytes_before=bytes_before,
            store_bytes_after=bytes_before,
        )

    with engine.begin() as conn:
        inserted = conn.execute(
            insert(_run).values(
                started_ms=clock(),
                until_ms=until,
                status=RunStatus.RUNNING,
                executor=str(spec),
                policy_digest=policy.digest,
                policy_json=json.dumps(asdict(policy), default=str, sort_keys=True),
                shards_total=len(todo),
            )
        ).inserted_primary_key
        assert inserted is not None
        run_id = int(inserted[0])
        append_event(
            conn,
            actor=actor,
            action="consolidate.started",
            details={
                "run_id": run_id,
                "until_ms": until,
                "shards": len(todo),
                "policy": policy.digest,
                "executor": str(spec),
            },
            at_ms=clock(),
        )
    report = ConsolidationReport(
        run_id,
        RunStatus.RUNNING,
        held=held_readings,
        shards=len(todo),
        until_ms=until,
        store_bytes_before=bytes_before,
    )
    tasks = (
        ShardTask(
            store.url, str(store.archive_root), run_id, number, patient, until, policy, clock()
        )
        for number, patient in enumerate(todo, start=1)
    )

    def may_start() -> bool:
        return deadline_ms is None or clock() < deadline_ms

    if spec.kind == "processes":
        # forked workers inherit the imported PyOD models
        warm_up_detectors(policy.detector_names)
    started = time.perf_counter()
    try:
        with _wal_kept_open(engine):
            for result in run_tasks(spec, consolidate_shard_or_report, tasks, may_start=may_start):
                report.add(result)
                if progress is not None:
                    progress(report.shards_done, report.shards)
    except BaseException as exc:
        report.status = RunStatus.FAILED
        report.seconds = time.perf_counter() - started
        report.store_bytes_after = bytes_before
        _finish(engine, report, actor, clock, error=f"{type(exc).__name__}: {exc}")
        raise
    finished = report.shards_done + len(report.held_late)
    report.status = RunStatus.COMMITTED if finished == report.shards else RunStatus.PARTIAL
    if report.failed and not finished:
        report.status = RunStatus.FAILED
    # After the shards and before the run's row, so the report and audit say what was returned
    space = return_space(engine)
    report.store_bytes_after, report.space_returned = space.bytes_after, space.returned
    report.seconds = time.perf_counter() - started
    error = None
    if report.failed:
        error = f"{len(report.failed)} shard(s) skipped; first: {report.failed[0]['error']}"
    _finish(engine, report, actor, clock, error=error)
    log.info("run %d %s: %d/%d shards", run_id, report.status, report.shards_done, report.shards)
    return report


@contextmanager
def _wal_kept_open(engine: Engine) -> Iterator[None]:
    """On SQLite, one idle connection for the duration of the shards.

    The last connection to close checkpoints the whole WAL into the database and fsyncs it;
    every shard opens and closes its own, so without this each shard paid a checkpoint
    (measured: 1.4 s of a 727k-reading night). The WAL still checkpoints itself every
    ``wal_autocheckpoint`` pages, and ``return_space`` cuts it after the night. The
    connection holds no transaction, so it keeps no snapshot and blocks no checkpoint."""
    if engine.dialect.name != "sqlite":
        yield
        return
    with engine.connect():
        yield


def _finish(
    engine: Engine, report: ConsolidationReport, actor: str, clock: Clock, error: str | None = None
) -> None:
    counts = report.as_json()
    with engine.begin() as conn:
        conn.execute(
            update(_run)
            .where(_run.c.id == report.run_id)
            .values(
                status=report.status,
                finished_ms=clock(),
                shards_done=report.shards_done,
                counts_json=json.dumps(counts),
                error=error,
            )
        )
        append_event(
            conn,
            actor=actor,
            action=f"consolidate.{report.status}",
            details={**counts, **({"error": error} if error else {})},
            at_ms=clock(),
        )
