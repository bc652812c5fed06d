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
"""

from __future__ import annotations

import argparse
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
    print(
        f"retained {report['retained']:,}, summaries {report['summaries']:,}, "
        f"compression {readings / (int(report['retained']) + int(report['summaries'])):.1f}x"
    )  # type: ignore[call-overload]
    share = file_after / file_before
    print(
        f"database file: {file_before / 2**20:,.1f} MiB before, {file_after / 2**20:,.1f} MiB "
        f"after = {share:.1%} (target <= 20%: {'met' if share <= 0.2 else 'NOT met'})"
    )


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
