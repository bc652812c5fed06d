"""Run shard tasks locally, in a process pool, or on a Dask cluster, with a deadline.

Shards are handed out a few at a time, so that ``deadline`` stops the job cleanly between
shards: nothing new starts after it, what is running finishes and commits.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from medsleep.errors import MedsleepError

T = TypeVar("T")
R = TypeVar("R")


class ExecutorSpecError(MedsleepError):
    """An --executor value that is not local, processes[:N] or dask://HOST:PORT."""


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str  # local, processes, dask
    workers: int = 1
    address: str = ""

    def __str__(self) -> str:
        if self.kind == "processes":
            return f"processes:{self.workers}"
        return self.address or self.kind


def parse_executor(text: str, cpu_count: int | None = None) -> ExecutorSpec:
    """``local``, ``processes`` (every core), ``processes:N`` or ``dask://HOST:PORT``."""
    if text == "local":
        return ExecutorSpec("local")
    if text == "processes" or text.startswith("processes:"):
        _, _, count = text.partition(":")
        try:
            workers = int(count) if count else (cpu_count or os.cpu_count() or 1)
        except ValueError as exc:
            raise ExecutorSpecError(f"processes:N needs a whole number, got {count!r}") from exc
        if workers < 1:
            raise ExecutorSpecError("processes:N needs N >= 1")
        return ExecutorSpec("processes", workers)
    if text.startswith(("dask://", "tcp://")):
        return ExecutorSpec("dask", address="tcp://" + text.split("://", 1)[1])
    raise ExecutorSpecError(
        f"unknown executor {text!r}: use local, processes[:N] or dask://HOST:PORT"
    )


def run_tasks(
    spec: ExecutorSpec,
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    may_start: Callable[[], bool] = lambda: True,
) -> Iterator[R]:
    """Yield ``fn(task)`` results as they complete; start no task once ``may_start`` is false."""
    if spec.kind == "local":
        for task in tasks:
            if not may_start():
                return
            yield fn(task)
        return
    if spec.kind == "processes":
        with ProcessPoolExecutor(max_workers=spec.workers) as pool:
            yield from _windowed(pool.submit, fn, tasks, may_start, spec.workers * 2)
        return
    yield from _run_dask(spec.address, fn, tasks, may_start)


def _windowed(
    submit: Callable[..., Any],
    fn: Callable[[T], R],
    tasks: Iterable[T],
    may_start: Callable[[], bool],
    window: int,
) -> Iterator[R]:
    pending: set[Future[R]] = set()
    iterator = iter(tasks)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window and may_start():
            task = next(iterator, None)
            if task is None:
                exhausted = True
                break
            pending.add(submit(fn, task))
        if not pending:
            return
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield future.result()


def _run_dask(
    address: str, fn: Callable[[T], R], tasks: Iterable[T], may_start: Callable[[], bool]
) -> Iterator[R]:
    from distributed import Client, as_completed  # untyped library

    with Client(address, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        iterator = iter(tasks)

        def submit_next() -> Any | None:
            task = next(iterator, None) if may_start() else None
            return None if task is None else client.submit(fn, task, pure=False)

        first = [f for f in (submit_next() for _ in range(workers * 2)) if f is not None]
        if not first:
            return
        running = as_completed(first, loop=client.loop)  # type: ignore[no-untyped-call]
        for future in running:
            yield future.result()
            following = submit_next()
            if following is not None:
                running.add(following)  # type: ignore[no-untyped-call]
