"""Ingest speed: medsleep's pipeline against a naive baseline, measured in the same run.

    .venv/bin/python benchmarks/ingest.py [--observations 500000] [--baseline 20000] [--big-gb 0]

The naive baseline validates each resource with fhir.resources and adds it through the
SQLModel ORM, committing every 1,000 — what one writes first. Both write to a fresh SQLite
file. ``--big-gb 1`` also ingests a ~1 GB file and reports how flat peak RSS stays.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import make_input, run_child

MEDSLEEP = """
import json, sys, time
from medsleep.ingest import ingest_paths
from medsleep.store import open_store
path, db, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = open_store(db)
t = time.perf_counter()
report = ingest_paths(engine, [path], workers=workers)
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
from medsleep.store.models import Reading
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
                part=i if obs.component else -1, status=obs.status, batch_id=0, state="raw",
                resource_json=line))
        n += 1
        if n % 1000 == 0:
            session.commit()
    session.commit()
seconds = time.perf_counter() - t
print(json.dumps({"resources": n, "seconds": seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=500_000)
    parser.add_argument("--baseline", type=int, default=20_000, help="resources for the naive run")
    parser.add_argument("--big-gb", type=float, default=0.0, help="also ingest a file this big")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medsleep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = make_input(work, args.observations)
    rows = []

    naive = run_child(NAIVE, str(path), f"sqlite:///{work}/naive.db", str(args.baseline))
    naive_rate = naive.result["resources"] / naive.result["seconds"]  # type: ignore[operator]
    rows.append(("naive: fhir.resources + ORM, commit/1000", naive_rate, naive.peak_rss_mb))

    for workers, label in ((0, "medsleep, one core"), (2, "medsleep --workers 2")):
        db = work / f"w{workers}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        child = run_child(MEDSLEEP, str(path), f"sqlite:///{db}", str(workers))
        assert child.result["balanced"], child.result
        rate = child.result["resources"] / child.result["seconds"]  # type: ignore[operator]
        rows.append((label, rate, child.peak_rss_mb))

    print(f"input: {path} ({path.stat().st_size / 2**20:,.0f} MiB)")
    print(f"{'pipeline':44} {'Observations/s':>15} {'x naive':>8} {'peak RSS MiB':>13}")
    for label, rate, rss in rows:
        print(f"{label:44} {rate:15,.0f} {rate / naive_rate:8.1f} {rss:13,.0f}")

    if args.big_gb:
        big = make_input(work, int(args.big_gb * 2**30 / 593), seed=2)
        db = work / "big.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        child = run_child(MEDSLEEP, str(big), f"sqlite:///{db}", "0", sample_every=1.0)
        samples = child.rss_samples_mb
        marks = {f"{p}%": round(samples[int(len(samples) * p / 100) - 1]) for p in (10, 50, 90)}
        print(
            f"big file: {big.stat().st_size / 2**30:.2f} GiB, "
            f"{child.result['resources'] / child.result['seconds']:,.0f} Observations/s, "  # type: ignore[operator]
            f"peak RSS {child.peak_rss_mb:,.0f} MiB, RSS at {marks}"
        )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
