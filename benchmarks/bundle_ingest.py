"""Bundle ingest speed: medsleep ingesting FHIR Bundles against plain orjson parsing of the
same files, measured in the same run (the issue's target: within 2x of the bare parse).

    .venv/bin/python benchmarks/bundle_ingest.py [--copies 10] [--repeat 3]

Input: the two Synthea R4 patient Bundles of ``fixtures/synthea-r4-bundles`` (7 MB), written
``--copies`` times with fresh ids so nothing is a duplicate. Each repeat ingests into a fresh
SQLite file; the median of the repeats is reported with the ratio to the bare parse.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from medsleep.ingest import ingest_paths
from medsleep.store.engine import open_store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "synthea-r4-bundles"


def make_input(out: Path, copies: int) -> list[Path]:
    """``copies`` of each fixture Bundle, every id and urn:uuid replaced (no duplicates)."""
    files = []
    for source in sorted(FIXTURES.glob("*.json")):
        text = source.read_text()
        ids = {e["resource"]["id"] for e in orjson.loads(text)["entry"] if "id" in e["resource"]}
        for copy in range(copies):
            renamed = text
            for rid in ids:
                renamed = renamed.replace(rid, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rid}{copy}")))
            path = out / f"{source.stem}-{copy}.json"
            path.write_text(renamed)
            files.append(path)
    return files


def bare_parse(files: list[Path]) -> float:
    started = time.perf_counter()
    for path in files:
        orjson.loads(path.read_bytes())
    return time.perf_counter() - started


def ingest(files: list[Path], db: Path) -> tuple[float, int, int]:
    engine = open_store(f"sqlite:///{db}")
    try:
        started = time.perf_counter()
        report = ingest_paths(engine, [str(f) for f in files])
        return time.perf_counter() - started, report.resources, report.readings
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_input(Path(tmp), args.copies)
        size = sum(f.stat().st_size for f in files)
        parses, ingests = [], []
        for run in range(args.repeat):
            parses.append(bare_parse(files))
            seconds, resources, readings = ingest(files, Path(tmp) / f"run-{run}.db")
            ingests.append(seconds)
    parse_s, ingest_s = statistics.median(parses), statistics.median(ingests)
    print(
        json.dumps(
            {
                "bundles": len(files),
                "mb": round(size / 2**20, 1),
                "resources": resources,
                "readings": readings,
                "orjson_parse_s": round(parse_s, 3),
                "ingest_s": round(ingest_s, 3),
                "resources_per_s": round(resources / ingest_s),
                "ratio_to_bare_parse": round(ingest_s / parse_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
