"""Export speed and memory: resources (or table rows) written per second, peak RSS.

    .venv/bin/python benchmarks/export.py [--patients 50] [--work DIR]

Generates ``patients`` ICU patient-days (5,843 Observations, ~7,270 readings each), ingests
them into SQLite once, consolidates a copy (processes:2), then times five exports, each in a
fresh child process whose RSS is sampled every 0.2 s:

  * ``hot fhir``     — the unconsolidated store: every line an original resource, verbatim;
  * ``fhir``         — the consolidated store: retained originals, summaries, Provenance;
  * ``fhir+archive`` — the same with ``--include-archived`` (every original resource again);
  * ``csv+archive`` / ``parquet+archive`` — the same content as tables.

Target: >= 50,000 resources/s, and peak RSS that does not grow with the store (run with two
``--patients`` values and compare).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import CONSOLIDATE_CHILD, INGEST_CHILD, copy_db, make_input, run_child

EXPORT = """
import json, sys
from pathlib import Path
from medsleep.export import ExportRequest, export
from medsleep.store import Store
url, archive, out, fmt, archived = sys.argv[1:6]
request = ExportRequest(format=fmt, include_archived=archived == "1")
r = export(Store.open(url, Path(archive)), Path(out), request)
print(json.dumps(r.as_json()))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medsleep-bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    source = make_input(work, args.patients * 5843, seed=5)
    hot = work / f"hot-{args.patients}.db"
    if not hot.exists():
        ingested = run_child(INGEST_CHILD, str(source), f"sqlite:///{hot}")
        print(f"ingested {ingested.result['readings']:,} readings")
    consolidated = work / f"consolidated-{args.patients}.db"
    archive = work / f"archive-{args.patients}"
    if not consolidated.exists():
        copy_db(hot, consolidated)
        shutil.rmtree(archive, ignore_errors=True)
        run = run_child(CONSOLIDATE_CHILD, f"sqlite:///{consolidated}", str(archive))
        r = run.result
        print(
            f"consolidated: {r['retained']:,} retained, {r['collapsed']:,} collapsed into "
            f"{r['summaries']:,} summaries"
        )

    cases = [
        ("hot fhir", hot, "fhir", "0"),
        ("fhir", consolidated, "fhir", "0"),
        ("fhir+archive", consolidated, "fhir", "1"),
        ("csv+archive", consolidated, "csv", "1"),
        ("parquet+archive", consolidated, "parquet", "1"),
    ]
    print(f"{'export':>16} {'resources':>10} {'seconds':>8} {'per second':>11} {'peak RSS':>9}")
    for label, db, fmt, archived in cases:
        out = work / f"out-{label.replace('+', '-').replace(' ', '-')}"
        shutil.rmtree(out, ignore_errors=True)
        child = run_child(
            EXPORT, f"sqlite:///{db}", str(archive), str(out), fmt, archived, sample_every=0.2
        )
        r = child.result
        print(
            f"{label:>16} {r['resources']:>10,} {r['seconds']:>8.2f} "
            f"{r['per_second']:>11,} {child.peak_rss_mb:>7.0f} MB"
        )
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
