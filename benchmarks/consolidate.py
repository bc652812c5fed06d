"""Consolidation speed: the nightly job against "downsample everything" in SQL, same run.

    .venv/bin/python benchmarks/consolidate.py [--patients 700] [--executor processes:2]
    .venv/bin/python benchmarks/consolidate.py --per-second 30 --hours 24

``--per-second N`` replaces the generator's one-a-minute ICU data by N bedside monitors sending
heart rate and SpO2 (IEEE 11073 MDC codes) once a second for ``--hours``.

Generates ``patients`` ICU patient-days (about 7,270 readings each; 700 give ~5.1M readings),
ingests them into SQLite once, copies the database, then times on identical copies:
  * medsleep consolidate (detect, summarise, archive with fsync + verify, commit per patient);
  * the baseline: INSERT INTO hourly SELECT ... GROUP BY patient, code, hour; DELETE FROM reading.
It also prints the hot store's bytes per reading, table by table, and the database file's size
before and after the night (target: after <= 20 % of before).

The floor: what "never lose a reading" cannot skip, timed in the same run on the same data,
one process: writing + fsyncing + verifying the archive copy of the very rows medsleep archived
(its own files, read back untimed, written again with ``write_archive_file``), and the
detectors alone (``classify_patient`` on each patient's readings, loaded untimed). Divided by
the executor's workers it is the floor's best case at that parallelism; medsleep's time is
printed against it as well as against the SQL downsample.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import (
    CONSOLIDATE_CHILD,
    INGEST_CHILD,
    copy_db,
    make_input,
    make_per_second_input,
    run_child,
)

from medsleep.read.space import store_stats
from medsleep.store.engine import open_store

# The floor's steps, each timed alone (wall and CPU), one process.
FLOOR_CHILD = """
import json, sys, time
from pathlib import Path
import pyarrow.parquet as pq
from sqlalchemy import text
from medsleep.archive.files import iter_archive_files, write_archive_file
from medsleep.consolidate.shard import ShardTask, load_raw
from medsleep.detect import classify_patient, warm_up_detectors
from medsleep.policy import load_policy
from medsleep.store.engine import create_store_engine
url, produced, floor_root = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
policy = load_policy()
warm_up_detectors(policy.detector_names)
clocks = {"archive": [0.0, 0.0], "detect": [0.0, 0.0]}
def timed(step, fn, *args, **kwargs):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    clocks[step][0] += time.perf_counter() - w
    clocks[step][1] += time.process_time() - c
    return out
rows = 0
for name in iter_archive_files(produced):
    parquet = pq.ParquetFile(produced / name)
    meta = {k: v for k, v in (parquet.metadata.metadata or {}).items()
            if k.startswith(b"medsleep.")}
    frame = parquet.read().to_pandas()
    rows += timed("archive", write_archive_file, floor_root, name, frame,
                  **({"metadata": meta} if meta else {})).rows
engine = create_store_engine(url)
until = 1_798_761_600_000  # 2027-01-01
with engine.connect() as conn:
    patients = [p for (p,) in conn.execute(text("SELECT DISTINCT patient FROM reading"))]
    for i, patient in enumerate(patients):
        raw = load_raw(conn, ShardTask(url, "", 0, i, patient, until, policy, 0))
        frame = raw.rename(columns={"effective_ms": "t"})[
            ["id", "code", "t", "value", "interpretation", "reference_range"]]
        timed("detect", classify_patient, frame, policy)
print(json.dumps({"rows": rows, **{k: v for k, v in clocks.items()}}))
"""

BASELINE_SQL = """
CREATE TABLE hourly AS SELECT patient, code, (effective_ms / 3600000) * 3600000 AS bucket,
  count(*) AS n, min(value) AS min, max(value) AS max, avg(value) AS mean
  FROM reading WHERE 0 GROUP BY 1, 2, 3;
INSERT INTO hourly SELECT patient, code, (effective_ms / 3600000) * 3600000, count(*),
  min(value), max(value), avg(value) FROM reading GROUP BY 1, 2, 3;
DELETE FROM reading;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=700)
    parser.add_argument("--executor", default="processes:2")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--per-second", type=int, default=0, help="monitors at 1 reading/s")
    parser.add_argument("--hours", type=float, default=24)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medsleep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.per_second:
        source = make_per_second_input(work, args.per_second, args.hours, seed=3)
        template = work / f"template-ps{args.per_second}-{args.hours:g}h.db"
        what = f"{args.per_second} monitors x {args.hours:g} h at 1/s"
    else:
        source = make_input(work, args.patients * 5843, seed=3)
        template = work / f"template-{args.patients}.db"
        what = f"{args.patients} patient-days"
    if not template.exists():
        ingested = run_child(INGEST_CHILD, str(source), f"sqlite:///{template}")
        print(
            f"ingested {ingested.result['readings']:,} readings in "
            f"{ingested.result['seconds']:.0f} s"
        )

    db = work / "medsleep.db"
    copy_db(template, db)
    _bytes_per_reading(f"sqlite:///{db}")
    file_before = db.stat().st_size
    archive = work / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    child = run_child(CONSOLIDATE_CHILD, f"sqlite:///{db}", str(archive), args.executor)
    report = child.result
    seconds = float(report["seconds"])  # type: ignore[arg-type]
    readings = int(report["readings_in"])  # type: ignore[call-overload]
    file_after = _file_bytes(db)

    base = work / "baseline.db"
    copy_db(template, base)
    started = time.perf_counter()
    with sqlite3.connect(base) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(BASELINE_SQL)
    baseline = time.perf_counter() - started

    floor_db = work / "floor.db"
    copy_db(template, floor_db)
    floor_root = work / "floor-archive"
    shutil.rmtree(floor_root, ignore_errors=True)
    floor = run_child(FLOOR_CHILD, f"sqlite:///{floor_db}", str(archive), str(floor_root)).result
    archive_wall, archive_cpu = floor["archive"]  # type: ignore[misc]
    detect_wall, detect_cpu = floor["detect"]  # type: ignore[misc]
    workers = _workers(args.executor)
    floor_seconds = (archive_wall + detect_wall) / workers

    imported = float(report["import_seconds"])  # type: ignore[arg-type]
    print(f"readings: {readings:,} ({what}), executor {args.executor}")
    print(
        f"medsleep consolidate: {seconds:7.1f} s = {readings / seconds * 60:12,.0f} readings/min,"
        f" peak RSS {child.peak_rss_mb:,.0f} MiB (all processes)"
    )
    with_import = seconds + imported
    print(
        f"  + importing PyOD/scikit-learn once: {imported:.1f} s -> {with_import:.1f} s = "
        f"{readings / with_import * 60:,.0f} readings/min"
    )
    print(
        f"baseline downsample:  {baseline:7.1f} s = {readings / baseline * 60:12,.0f} readings/min"
    )
    print(
        f"ratio medsleep / baseline time: {seconds / baseline:.2f}x "
        f"({with_import / baseline:.2f}x with the import)"
    )
    cpu = report.get("cpu_seconds")
    if cpu is not None:
        print(f"medsleep CPU, all processes: {float(cpu):.1f} s")  # type: ignore[arg-type]
    print(
        f"floor, one process: archive copy of the {floor['rows']:,} collapsed readings written "
        f"+ fsynced + verified {archive_wall:.1f} s ({archive_cpu:.1f} s CPU); detectors alone "
        f"{detect_wall:.1f} s ({detect_cpu:.1f} s CPU)"
    )
    print(
        f"floor at {workers} worker(s): {floor_seconds:.1f} s = {floor_seconds / baseline:.2f}x "
        f"the baseline; medsleep / floor: {seconds / floor_seconds:.2f}x"
    )
    print(
        f"retained {report['retained']:,}, summaries {report['summaries']:,}, "
        f"compression {readings / (int(report['retained']) + int(report['summaries'])):.1f}x"
    )  # type: ignore[call-overload]
    share = file_after / file_before
    print(
        f"database file: {file_before / 2**20:,.1f} MiB before, {file_after / 2**20:,.1f} MiB "
        f"after = {share:.1%} (target <= 20%: {'met' if share <= 0.2 else 'NOT met'})"
    )
    _tables_after(f"sqlite:///{db}", file_after)


def _tables_after(url: str, file_bytes: int) -> None:
    """What the file holds after the night, table by table (dbstat), down to 1 % of it."""
    engine = open_store(url)
    stats = store_stats(engine)
    engine.dispose()
    print(f"after the night ({stats.free_bytes / 2**20:,.1f} MiB on the free list):")
    for table in stats.tables:
        if table.bytes and table.bytes >= 0.01 * file_bytes:
            print(f"  {table.table:18} {table.rows:>10,} rows {table.bytes / 2**20:8,.1f} MiB")


def _workers(executor: str) -> int:
    """How many processes the executor runs shards in (the floor is divided by it)."""
    kind, _, count = executor.partition(":")
    if kind == "processes":
        return int(count) if count else os.cpu_count() or 1
    return 1


def _file_bytes(db: Path) -> int:
    """The database file's size once its WAL is folded in."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.stat().st_size


def _bytes_per_reading(url: str) -> None:
    engine = open_store(url)
    stats = store_stats(engine)
    engine.dispose()
    n = stats.hot_readings
    print(f"hot store before the night: {n:,} readings, {stats.store_bytes / n:,.0f} bytes each")
    for table in stats.tables:
        if table.bytes and table.bytes / n >= 0.5:
            per = table.bytes / n
            print(f"  {table.table:16} {table.rows:>12,} rows {per:8,.1f} bytes/reading")


if __name__ == "__main__":
    main()
