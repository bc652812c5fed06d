"""Bundle ingest speed and memory: medsleep ingesting FHIR Bundles against plain orjson
parsing of the same files, measured in the same run (the targets: within 2x of the bare
parse; peak memory flat, not growing with the largest Bundle).

    .venv/bin/python benchmarks/bundle_ingest.py [--copies 10] [--repeat 3] [--entries 200000]

Speed: the two Synthea R4 patient Bundles of ``fixtures/synthea-r4-bundles`` (7 MB), written
``--copies`` times with fresh ids so nothing is a duplicate. Each repeat parses them with
orjson and then ingests them into a fresh SQLite file, interleaved; the medians of the CPU
seconds (process time: steadier than wall time on a shared machine) give the ratio.

Memory: one Bundle of ``--entries`` entries (the fixtures' Patients and vital-sign
Observations, renamed per copy), written to the work folder. Its ingest and its bare orjson
parse each run in a child process that reports its own peak RSS (``ru_maxrss``), beside the
peak of a child that only imports medsleep.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from medsleep.ingest import ingest_paths
from medsleep.store.engine import open_store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "synthea-r4-bundles"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Children print one JSON line: what they did and their own peak RSS in MB (ru_maxrss).
_INGEST_CHILD = """
import json, resource, sys, time
from medsleep.ingest import ingest_paths
from medsleep.store.engine import open_store
engine = open_store(f"sqlite:///{sys.argv[2]}")
cpu, wall = time.process_time(), time.perf_counter()
r = ingest_paths(engine, [sys.argv[1]])
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"resources": r.resources, "readings": r.readings, "balanced": r.balanced,
                  "cpu_s": cpu, "wall_s": wall, "peak_mb": peak}))
"""
_PARSE_CHILD = """
import json, resource, sys, time
import orjson
import medsleep.ingest
cpu = time.process_time()
with open(sys.argv[1], "rb") as f:
    orjson.loads(f.read())
cpu = time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"cpu_s": cpu, "peak_mb": peak}))
"""
_IDLE_CHILD = """
import json, resource
import medsleep.ingest
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _renamed(text: str, copy: int) -> str:
    """``text`` with every uuid replaced by one of its own for this copy (no duplicates)."""
    return _UUID.sub(lambda m: f"{m.group()[:24]}{copy:012x}", text)


def make_input(out: Path, copies: int) -> list[Path]:
    """``copies`` of each fixture Bundle, every id and urn:uuid replaced."""
    files = []
    for source in sorted(FIXTURES.glob("*.json")):
        text = source.read_text()
        for copy in range(copies):
            path = out / f"{source.stem}-{copy}.json"
            path.write_text(_renamed(text, copy))
            files.append(path)
    return files


def make_big_bundle(out: Path, entries: int) -> Path:
    """One transaction Bundle of ``entries`` entries: each fixture's Patient followed by its
    vital-sign Observations, pared to the fields a monitor sends, renamed per copy."""
    path = out / f"bundle-{entries}.json"
    if path.exists():
        return path
    keep = ("resourceType", "id", "status", "code", "subject", "effectiveDateTime")
    block: list[dict[str, object]] = []
    for source in sorted(FIXTURES.glob("*.json")):
        for entry in orjson.loads(source.read_bytes())["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                pared = {"resourceType": "Patient", "id": resource["id"]}
            elif resource["resourceType"] == "Observation" and "valueQuantity" in resource:
                pared = {k: resource[k] for k in keep}
                pared["code"] = {"coding": resource["code"]["coding"][:1]}
                quantity = resource["valueQuantity"]
                pared["valueQuantity"] = {"value": quantity["value"], "code": quantity["code"]}
            else:
                continue
            block.append({"fullUrl": entry["fullUrl"], "resource": pared})
    template = orjson.dumps(block).decode()[1:-1]
    with path.open("w") as handle:
        handle.write('{"resourceType":"Bundle","type":"collection","entry":[')
        written = copy = 0
        while written < entries:
            items = orjson.loads(f"[{_renamed(template, copy)}]")[: entries - written]
            handle.write(("," if written else "") + orjson.dumps(items).decode()[1:-1])
            written += len(items)
            copy += 1
        handle.write("]}")
    return path


def bare_parse(files: list[Path]) -> float:
    started = time.process_time()
    for path in files:
        orjson.loads(path.read_bytes())
    return time.process_time() - started


def ingest(files: list[Path], db: Path) -> tuple[float, int, int]:
    engine = open_store(f"sqlite:///{db}")
    try:
        started = time.process_time()
        report = ingest_paths(engine, [str(f) for f in files])
        assert report.balanced
        return time.process_time() - started, report.resources, report.readings
    finally:
        engine.dispose()


def _child(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def speed(work: Path, copies: int, repeat: int) -> dict[str, object]:
    files = make_input(work, copies)
    parses, ingests = [], []
    for run in range(repeat):
        parses.append(bare_parse(files))
        seconds, resources, readings = ingest(files, work / f"run-{run}.db")
        ingests.append(seconds)
    parse_s, ingest_s = statistics.median(parses), statistics.median(ingests)
    return {
        "bundles": len(files),
        "mb": round(sum(f.stat().st_size for f in files) / 2**20, 1),
        "resources": resources,
        "readings": readings,
        "orjson_parse_cpu_s": round(parse_s, 3),
        "ingest_cpu_s": round(ingest_s, 3),
        "resources_per_cpu_s": round(resources / ingest_s),
        "ratio_to_bare_parse": round(ingest_s / parse_s, 2),
    }


def memory(work: Path, entries: int) -> dict[str, object]:
    bundle = make_big_bundle(work, entries)
    idle = _child(_IDLE_CHILD)
    parse = _child(_PARSE_CHILD, str(bundle))
    db = work / f"big-{entries}.db"
    for stale in work.glob(f"{db.name}*"):  # a fresh store: nothing is a duplicate
        stale.unlink()
    ingested = _child(_INGEST_CHILD, str(bundle), str(db))
    return {
        "entries": entries,
        "mb": round(bundle.stat().st_size / 2**20, 1),
        "resources": ingested["resources"],
        "readings": ingested["readings"],
        "balanced": ingested["balanced"],
        "peak_rss_mb_import_only": round(idle["peak_mb"]),
        "peak_rss_mb_orjson_parse": round(parse["peak_mb"]),
        "peak_rss_mb_ingest": round(ingested["peak_mb"]),
        "ingest_cpu_s": round(ingested["cpu_s"], 2),
        "ratio_to_bare_parse": round(ingested["cpu_s"] / parse["cpu_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--entries", type=int, default=200_000, help="0: skip the memory part")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result: dict[str, object] = {"speed": speed(work, args.copies, args.repeat)}
        if args.entries:
            result["memory"] = memory(work, args.entries)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
