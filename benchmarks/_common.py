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

# The detector stack (PyOD, scikit-learn, SciPy, matplotlib by way of ECOD) is imported once
# per process, before the night, and timed apart: a `consolidate sleep` service pays it once.
CONSOLIDATE_CHILD = """
import json, resource, sys, time
from pathlib import Path
from medsleep.consolidate.job import consolidate
from medsleep.consolidate.executors import parse_executor
from medsleep.detect import warm_up_detectors
from medsleep.policy import load_policy
from medsleep.store import Store
from medsleep.timefmt import parse_iso_ms
executor = sys.argv[3] if len(sys.argv) > 3 else "processes:2"
policy = load_policy()
t = time.perf_counter()
warm_up_detectors(policy.detector_names)
imported = time.perf_counter() - t
def cpu():  # this process and its joined workers (the pool is shut down when the night ends)
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
c = cpu()
r = consolidate(Store.open(sys.argv[1], Path(sys.argv[2])), policy,
                until_ms=parse_iso_ms("2027-01-01T00:00:00+00:00"),
                executor=parse_executor(executor))
print(json.dumps({**r.as_json(), "import_seconds": imported, "cpu_seconds": cpu() - c}))
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


def make_per_second_input(out: Path, patients: int, hours: float, seed: int = 1) -> Path:
    """``patients`` bedside monitors sending heart rate (MDC_ECG_HEART_RATE) and SpO2 once a
    second for ``hours``: slow drift, beat-level noise, a tachycardia and a desaturation per
    patient, and sensor-off zeros. About 7,200 readings per patient-hour."""
    import numpy as np  # only this generator needs it

    target = out / f"per-second-{patients}p-{hours:g}h-s{seed}" / "observations.ndjson"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(hours * 3600)
    start_s = 1_767_571_200  # 2026-01-05T00:00:00Z
    codes = (("147842", "/min", 72.0, 1.0), ("150456", "%", 97.0, 0.4))
    with target.open("w") as out_file:
        for p in range(patients):
            for code, unit, base, noise in codes:
                drift = np.cumsum(rng.normal(0, 0.02, n))
                values = base + drift - drift.mean() + rng.normal(0, noise, n)
                at = int(rng.integers(600, n - 900))
                values[at : at + 300] += 35 if code == "147842" else -9  # a 5-minute event
                off = int(rng.integers(0, n - 60))
                values[off : off + 30] = 0.0  # sensor off for 30 s
                values = np.round(values, 0 if unit == "/min" else 1)
                for s in range(n):
                    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_s + s))
                    out_file.write(
                        f'{{"resourceType":"Observation","id":"ps{p}-{code}-{s}",'
                        f'"meta":{{"versionId":"1"}},"status":"final","code":{{"coding":'
                        f'[{{"system":"urn:iso:std:iso:11073:10101","code":"{code}"}}]}},'
                        f'"subject":{{"reference":"Patient/ps-{p:04d}"}},'
                        f'"effectiveDateTime":"{when}","valueQuantity":{{"value":'
                        f'{values[s]:g},"unit":"{unit}","system":"http://unitsofmeasure.org",'
                        f'"code":"{unit}"}}}}\n'
                    )
    return target


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
