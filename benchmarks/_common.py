"""Shared bits of the benchmarks: synthetic inputs, timing children, RSS sampling."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from medsleep.synth import generate

OBSERVATIONS_PER_PATIENT_DAY = 5843  # what medsleep.synth writes for one patient-day

# Child scripts (run with run_child, so each measures its own process and peak memory).
INGEST_CHILD = """
import json, sys, time
from medsleep.ingest import ingest_paths
from medsleep.store.engine import open_store
engine = open_store(sys.argv[2])
t = time.perf_counter()
r = ingest_paths(engine, [sys.argv[1]])
print(json.dumps({"readings": r.readings, "seconds": time.perf_counter() - t}))
"""

CONSOLIDATE_CHILD = """
import json, sys
from pathlib import Path
from medsleep.consolidate.job import consolidate
from medsleep.consolidate.executors import parse_executor
from medsleep.policy import load_policy
from medsleep.store import Store
from medsleep.timefmt import parse_iso_ms
executor = sys.argv[3] if len(sys.argv) > 3 else "processes:2"
r = consolidate(Store.open(sys.argv[1], Path(sys.argv[2])), load_policy(),
                until_ms=parse_iso_ms("2027-01-01T00:00:00+00:00"),
                executor=parse_executor(executor))
print(json.dumps(r.as_json()))
"""


def copy_db(src: Path, dst: Path) -> None:
    """Copy a SQLite database file after folding its WAL into it."""
    with sqlite3.connect(src) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(src, dst)


def make_input(out: Path, observations: int, seed: int = 1) -> Path:
    """Generate at least ``observations`` Observations (whole patient-days) as NDJSON."""
    patients = max(1, -(-observations // OBSERVATIONS_PER_PATIENT_DAY))
    target = out / f"obs-{patients}p-s{seed}"
    if not (target / "observations.ndjson").exists():
        generate(target, patients=patients, days=1, seed=seed)
    return target / "observations.ndjson"


@dataclass
class Child:
    """A child process whose result (JSON on its last stdout line) and memory we record."""

    seconds: float
    result: dict[str, object]
    peak_rss_mb: float
    rss_samples_mb: list[float] = field(default_factory=list)


def run_child(code: str, *args: str, sample_every: float = 0.5) -> Child:
    """Run ``python -c code args`` and sample its RSS (children included) while it runs."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    samples: list[float] = []

    def sample() -> None:
        try:
            handle = psutil.Process(proc.pid)
            while proc.poll() is None:
                rss = handle.memory_info().rss
                rss += sum(c.memory_info().rss for c in handle.children(recursive=True))
                samples.append(rss / 2**20)
                time.sleep(sample_every)
        except psutil.Error:
            return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    thread.join(timeout=2)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed ({proc.returncode}):\n{out}")
    result = json.loads(out.strip().splitlines()[-1])
    return Child(seconds, result, max(samples, default=0.0), samples)
