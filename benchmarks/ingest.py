"""Ingest speed: medsleep's pipeline against a naive baseline, measured in the same run.

    .venv/bin/python benchmarks/ingest.py [--observations 500000] [--baseline 20000]
                                          [--strict 20000] [--big-gb 0] [--repeat 1]
                                          [--plain 200000]

The naive baseline validates each resource with fhir.resources and adds it through the
SQLModel ORM, committing every 1,000 — what one writes first. Every run writes to a fresh
SQLite file. "one core" pins the process (and its checkpoint thread) to a single CPU with
``sched_setaffinity``, so the figure is what one core does, not what two cores do
concurrently. ``--strict N`` also ingests N Observations with ``--strict`` on one core and
with ``--workers 2``. ``--big-gb 1`` ingests a ~1 GB file and reports how flat peak RSS
stays. ``--repeat`` runs each medsleep row that many times and keeps the median (the
machines here are noisy).

``--plain N`` takes the first N one-value Observations (no panels) of the input, the plain
monitoring NDJSON a bedside gateway sends, and reports on it: the hot store's bytes per
reading table by table (also for the whole mixed input), and whole-process time against
``sqlite-utils insert --nl`` of the same file — installed only into a venv of its own under
the benchmark's work folder, never into medsleep's — as the library inline and as
``medsleep ingest`` with its default ``--workers`` (one parse process per CPU for a file
this size). Each whole process is timed in wall
seconds and in CPU seconds (user + system, from ``getrusage``): on a shared machine, and
against a tool that commits (and syncs) every 100 rows, wall time is mostly the disk's and
the neighbours'; CPU time is the work. ``--rounds R`` times each contender R times,
alternating, and keeps the medians; ``--against DIR`` adds another checkout of medsleep
(e.g. main's, run from this venv with ``PYTHONPATH=DIR``) to the same rounds, library and
``medsleep ingest`` alike, so old and new are compared in one run. Each checkout's package is
byte-compiled first, as an installed one is. For ``medsleep ingest`` it also prints the CPU
seconds of the command's own process, its parse workers apart: the writing process, which
the run waits for.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from _common import make_input, run_child

import medsleep
from medsleep.read.space import store_stats
from medsleep.store.engine import open_store

SQLITE_UTILS = "sqlite-utils==4.2.1"

MEDSLEEP = """
import json, os, sys, time
from medsleep.ingest import ParseOptions, ingest_paths
from medsleep.store import open_store
path, db, workers, pin, strict = sys.argv[1:6]
workers = int(workers)
if pin == "pin":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
engine = open_store(db)
t = time.perf_counter()
report = ingest_paths(engine, [path], workers=workers,
                      options=ParseOptions(strict=strict == "strict"))
seconds = time.perf_counter() - t
print(json.dumps({"resources": report.resources, "readings": report.readings,
                  "stored": report.stored, "seconds": seconds, "balanced": report.balanced}))
"""

NAIVE = """
import json, sys, time
from itertools import islice
from fhir.resources.R4B.observation import Observation
from sqlmodel import Session
from medsleep.store import open_store
from medsleep.store.models import Reading, ResourceSeen
path, db, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = open_store(db)
t = time.perf_counter()
n = 0
with Session(engine) as session, open(path) as lines:
    for line in islice(lines, limit):
        obs = Observation.model_validate_json(line)
        parts = [(obs.code, obs.valueQuantity)] if obs.valueQuantity else [
            (c.code, c.valueQuantity) for c in obs.component or []]
        for i, (code, qty) in enumerate(parts):
            session.add(Reading(
                patient=obs.subject.reference.split("/")[-1], code_system="http://loinc.org",
                code=code.coding[0].code,
                effective_ms=int(obs.effectiveDateTime.timestamp() * 1000),
                value=float(qty.value), unit=qty.code, orig_value=float(qty.value),
                orig_unit=qty.code, resource_key=f"Observation/{obs.id}", resource_version="1",
                part=i if obs.component else -1, status=obs.status, batch_id=0, state="raw"))
        session.add(ResourceSeen(resource_key=f"Observation/{obs.id}", resource_version="1",
                                 batch_id=0, body=line.encode()))
        n += 1
        if n % 1000 == 0:
            session.commit()
    session.commit()
seconds = time.perf_counter() - t
print(json.dumps({"resources": n, "seconds": seconds}))
"""


def _fresh(db: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{db}"


def _medsleep(
    path: Path, db: Path, workers: int, pin: bool, strict: bool, repeat: int
) -> tuple[float, float]:
    """Median Observations/s over ``repeat`` runs, and the largest peak RSS (MiB)."""
    rates, peaks = [], []
    for _ in range(repeat):
        args = ("pin" if pin else "-", "strict" if strict else "-")
        child = run_child(MEDSLEEP, str(path), _fresh(db), str(workers), *args)
        assert child.result["balanced"], child.result
        rates.append(child.result["resources"] / child.result["seconds"])  # type: ignore[operator]
        peaks.append(child.peak_rss_mb)
    return statistics.median(rates), max(peaks)


def _bytes_per_reading(label: str, db: Path) -> None:
    engine = open_store(f"sqlite:///{db}")
    stats = store_stats(engine)
    engine.dispose()
    n = stats.hot_readings
    tables = ", ".join(
        f"{t.table} {t.bytes / n:,.0f}" for t in stats.tables if t.bytes and t.bytes / n >= 0.5
    )
    print(
        f"hot store, {label}: {n:,} readings, {stats.store_bytes / n:,.0f} bytes each "
        f"(target <= 250: {_met(stats.store_bytes / n <= 250)}); per table: {tables}"
    )


def _plain_input(path: Path, work: Path, n: int) -> Path:
    plain = work / f"plain-{n}.ndjson"
    if not plain.exists():
        with path.open("rb") as source, plain.open("wb") as out:
            out.writelines(islice((line for line in source if b'"component"' not in line), n))
    return plain


def _sqlite_utils(work: Path) -> Path:
    """``sqlite-utils``, installed into a venv of its own under ``work``."""
    venv = work / "sqlite-utils-venv"
    tool = venv / "bin" / "sqlite-utils"
    if not tool.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", SQLITE_UTILS]
        subprocess.run(pip, check=True)
    return tool


def _compile_bytecode(package: Path) -> None:
    """Byte-compile a checkout's package, as ``pip install`` does for an installed one (and
    did for sqlite-utils): where PYTHONDONTWRITEBYTECODE is set, as on this project's machines,
    a checkout would otherwise compile its modules again at every start (~70 ms)."""
    compileall.compile_dir(str(package), quiet=1)


def _timed(argv: list[str], env: dict[str, str] | None) -> tuple[float, float, float | None]:
    """Wall and CPU seconds (user + system, its children included) of one whole process, and
    the CPU seconds of the process alone where it reports them (``CLI``: without its parse
    workers, i.e. the writing process's)."""
    handle, name = tempfile.mkstemp(prefix="own-cpu-")
    os.close(handle)
    own_file = Path(name)
    env = {**(env if env is not None else os.environ), OWN_CPU_FILE: str(own_file)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # run from the temp folder: ``python -c`` puts the current directory first on sys.path,
    # so from inside a checkout it would import that tree, whatever PYTHONPATH says
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reported = own_file.read_text()
    own_file.unlink()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, float(reported) if reported else None


OWN_CPU_FILE = "MEDSLEEP_BENCH_OWN_CPU"
# What the ``medsleep`` console script runs, writing its own CPU seconds at exit.
CLI = f"""
import atexit, os, resource
def _own():
    used = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["{OWN_CPU_FILE}"], "w") as out:
        out.write(str(used.ru_utime + used.ru_stime))
atexit.register(_own)
from medsleep.cli import main
main()
"""


def _plain_comparison(
    path: Path, work: Path, n: int, rounds: int = 1, against: Path | None = None
) -> None:
    plain = _plain_input(path, work, n)
    tool = _sqlite_utils(work)
    trees = {"": None}
    _compile_bytecode(Path(medsleep.__file__).parent)
    if against is not None:
        trees[f" [{against}]"] = {**os.environ, "PYTHONPATH": str(against.resolve())}
        _compile_bytecode(against.resolve() / "medsleep")
    contenders: dict[str, tuple[list[str], Path, dict[str, str] | None]] = {}
    for i, (label, env) in enumerate(trees.items()):
        db = work / f"plain-{i}.db"
        contenders[f"medsleep library{label}"] = (
            [sys.executable, "-c", MEDSLEEP, str(plain), f"sqlite:///{db}", "0", "-", "-"],
            db,
            env,
        )
        cli_db = work / f"plain-cli-{i}.db"
        ingest = ["ingest", str(plain), "--db", f"sqlite:///{cli_db}", "--quiet", "--json"]
        contenders[f"medsleep ingest (CLI){label}"] = (
            [sys.executable, "-c", CLI, *ingest],
            cli_db,
            env,
        )
    su_db = work / "sqlite-utils.db"
    contenders["sqlite-utils insert --nl"] = (
        [str(tool), "insert", str(su_db), "observations", str(plain), "--nl"],
        su_db,
        None,
    )
    times: dict[str, list[tuple[float, float, float | None]]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            argv, db, env = contenders[name]
            _fresh(db)
            times[name].append(_timed(argv, env))
    _bytes_per_reading(
        f"plain monitoring ({plain.stat().st_size / 2**20:,.0f} MiB NDJSON)", work / "plain-0.db"
    )
    median = {
        name: (statistics.median(w for w, _, _ in runs), statistics.median(c for _, c, _ in runs))
        for name, runs in times.items()
    }
    own: dict[str, float | None] = {}
    for name, runs in times.items():
        reported = [o for _, _, o in runs if o is not None]
        own[name] = statistics.median(reported) if reported else None
    su_wall, su_cpu = median["sqlite-utils insert --nl"]
    print(f"plain, whole process, median of {rounds} alternated round(s):")
    print(
        f"{'':44} {'wall s':>7} {'CPU s':>7} {'su/x wall':>9} {'su/x CPU':>9} {'writer CPU s':>12}"
    )
    for name, (wall, cpu) in median.items():
        writer = f"{own[name]:12.2f}" if own[name] is not None else f"{'':12}"
        print(
            f"{name[:44]:44} {wall:7.2f} {cpu:7.2f} {su_wall / wall:9.2f} {su_cpu / cpu:9.2f} "
            f"{writer}"
        )
    print(
        "writer CPU: the CLI's own process without its parse workers, the one the run waits "
        "for (for 3x in wall time it must be done in a third of sqlite-utils' wall time)"
    )
    for name, how in (("medsleep library", "inline"), ("medsleep ingest (CLI)", "default")):
        wall, cpu = median[name]
        print(
            f"plain: {name} ({how} --workers) {su_wall / wall:.1f}x sqlite-utils in wall time, "
            f"{su_cpu / cpu:.1f}x in CPU time "
            f"(target >= 3x: {_met(su_wall / wall >= 3)} / {_met(su_cpu / cpu >= 3)})"
        )


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=500_000)
    parser.add_argument("--baseline", type=int, default=20_000, help="resources for the naive run")
    parser.add_argument("--strict", type=int, default=20_000, help="resources for --strict runs")
    parser.add_argument("--big-gb", type=float, default=0.0, help="also ingest a file this big")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (median)")
    parser.add_argument("--plain", type=int, default=200_000, help="0: skip the plain rows")
    parser.add_argument("--rounds", type=int, default=1, help="alternated plain rounds (median)")
    parser.add_argument("--against", type=Path, default=None, help="another checkout to compare")
    parser.add_argument("--only-plain", action="store_true", help="just the --plain rows")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = (args.work or Path(tempfile.mkdtemp(prefix="medsleep-bench-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    path = make_input(work, args.observations)
    if args.only_plain:
        _plain_comparison(path, work, args.plain, args.rounds, args.against)
        return
    rows = []

    naive = run_child(NAIVE, str(path), _fresh(work / "naive.db"), str(args.baseline))
    naive_rate = naive.result["resources"] / naive.result["seconds"]  # type: ignore[operator]
    rows.append(("naive: fhir.resources + ORM, commit/1000", naive_rate, naive.peak_rss_mb))

    pinnable = hasattr(os, "sched_setaffinity")
    runs = [
        ("medsleep, one core" if pinnable else "medsleep (not pinned)", 0, pinnable),
        ("medsleep, unpinned (2 cores available)", 0, False),
        ("medsleep --workers 2", 2, False),
    ]
    one_core = 0.0
    for label, workers, pin in runs:
        rate, rss = _medsleep(path, work / "m.db", workers, pin, False, args.repeat)
        one_core = one_core or rate
        rows.append((label, rate, rss))

    strict_rows = []
    if args.strict:
        subset = work / f"strict-{args.strict}.ndjson"
        with path.open("rb") as source, subset.open("wb") as out:
            out.writelines(islice(source, args.strict))
        for label, workers, pin in (
            ("--strict, one core", 0, pinnable),
            ("--strict --workers 2", 2, False),
        ):
            rate, rss = _medsleep(subset, work / "s.db", workers, pin, True, args.repeat)
            strict_rows.append((label, rate, rss))

    print(f"input: {path} ({path.stat().st_size / 2**20:,.0f} MiB), median of {args.repeat} run(s)")
    print(f"{'pipeline':44} {'Observations/s':>15} {'x naive':>8} {'peak RSS MiB':>13}")
    for label, rate, rss in rows + strict_rows:
        print(f"{label:44} {rate:15,.0f} {rate / naive_rate:8.1f} {rss:13,.0f}")
    ratio = one_core / naive_rate
    print(
        f"one core: {one_core:,.0f}/s (target >= 50,000: {_met(one_core >= 50_000)}), "
        f"{ratio:.1f}x naive (target >= 15x: {_met(ratio >= 15)})"
    )
    if strict_rows:
        print(f"--strict --workers 2 vs one core: {strict_rows[1][1] / strict_rows[0][1]:.2f}x")
    _bytes_per_reading("mixed input", work / "m.db")
    if args.plain:
        _plain_comparison(path, work, args.plain, args.rounds, args.against)

    if args.big_gb:
        big = make_input(work, int(args.big_gb * 2**30 / 593), seed=2)
        child = run_child(
            MEDSLEEP, str(big), _fresh(work / "big.db"), "0", "-", "-", sample_every=1.0
        )
        samples = child.rss_samples_mb
        marks = {f"{p}%": round(samples[int(len(samples) * p / 100) - 1]) for p in (10, 50, 90)}
        print(
            f"big file: {big.stat().st_size / 2**30:.2f} GiB, "
            f"{child.result['resources'] / child.result['seconds']:,.0f} Observations/s, "  # type: ignore[operator]
            f"peak RSS {child.peak_rss_mb:,.0f} MiB, RSS at {marks}"
        )
    print(json.dumps({"rows": rows + strict_rows}))


if __name__ == "__main__":
    main()
