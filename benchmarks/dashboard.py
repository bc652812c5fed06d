"""How fast the dashboard's Patient page opens a month-long ICU patient (server time, no cache).

    .venv/bin/python benchmarks/dashboard.py [--days 30] [--repeat 5] [--postgres]

Builds (once, kept under benchmarks/out/) one synthetic patient with ``medsleep.synth``: five
vitals a minute plus temperature and labs, ingested and consolidated up to the last 24 hours
(the policy's hot horizon), so the store holds what a morning after a month looks like:
summaries, retained readings with reasons, episodes, and one day of raw readings. Then it
times the view functions the Patient page calls, each on a fresh engine and without
Streamlit's cache, for the ranges the page offers. Target: under 1.5 s for the whole month.
``--postgres`` runs the same on a throwaway PostgreSQL server (tests/pg.py).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.pg

from medsleep.consolidate.job import consolidate  # noqa: E402
from medsleep.ingest import ingest_paths  # noqa: E402
from medsleep.policy import load_policy  # noqa: E402
from medsleep.read.overview import store_overview  # noqa: E402
from medsleep.read.patient import list_patients, patient_span, patient_view  # noqa: E402
from medsleep.store.engine import create_store_engine, open_store  # noqa: E402
from medsleep.store.handle import Store
from medsleep.store.models import Reading, Summary  # noqa: E402
from medsleep.synth import generate  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
HOUR = 3_600_000
RANGES = {"24 h": 24, "7 days": 168, "30 days": 720, "all": None}


def build_store(url: str, work: Path, days: float, seed: int, patients: int = 1) -> dict[str, Any]:
    """Generate, ingest and consolidate ``patients``; returns counts and timings."""
    data = work / f"synth-{patients}p-{days:g}d-seed{seed}"
    started = time.perf_counter()
    generate(data, patients=patients, days=days, seed=seed)
    engine = open_store(url)
    ingest_paths(engine, [str(data)])
    ingested = time.perf_counter()
    with engine.connect() as conn:
        readings = int(conn.execute(text("select count(*) from reading")).scalar_one())
        last = int(conn.execute(text("select max(effective_ms) from reading")).scalar_one())
    engine.dispose()
    until = last - 24 * HOUR  # the policy's hot horizon: the last day stays raw
    report = consolidate(Store.open(url, work / "archive"), load_policy(), until_ms=until)
    return {
        "readings": readings,
        "ingest_s": ingested - started,
        "consolidate_s": time.perf_counter() - ingested,
        "retained": report.retained,
        "summaries": report.summaries,
        "episodes": report.episodes,
    }


def prepare_digests(url: str) -> None:
    """What ``medsleep consolidate`` does after its run (sleep-time compute): prepare the
    digests of the nights the last run covered, in the dashboard's zone; timed."""
    from medsleep.read.prepared import prepare_after_run
    from medsleep.timefmt import wall_clock_ms

    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            run_id = conn.execute(text("select max(id) from run")).scalar_one()
        start, cpu = time.perf_counter(), time.process_time()
        done = prepare_after_run(engine, load_policy(), ZoneInfo("Europe/Zurich"), int(run_id),
                                 now_ms=wall_clock_ms())  # fmt: skip
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"prepared {len(done)} nights' digests in {took:.1f} s ({cpu:.1f} s CPU; "
              "nights already current are skipped)")  # fmt: skip
    finally:
        engine.dispose()


def store_counts(url: str) -> dict[str, int]:
    engine = create_store_engine(url)
    reading, summary = Reading.__table__, Summary.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        states = dict(
            conn.execute(select(reading.c.state, func.count()).group_by(reading.c.state)).all()
        )
        summarised = conn.execute(select(func.coalesce(func.sum(summary.c.n), 0))).scalar_one()
    engine.dispose()
    return {
        "raw": int(states.get("raw", 0)),
        "retained": int(states.get("retained", 0)),
        "summarised": int(summarised),
    }


def timed(repeat: int, call: Callable[[], Any]) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times, result


def measure(url: str, repeat: int) -> None:
    policy, tz = load_policy(), ZoneInfo("Europe/Zurich")

    def page(hours: int | None) -> Any:
        # What pages/patient.py asks for on a cold cache, on a fresh engine (no warm pool).
        engine = create_store_engine(url)
        try:
            store_overview(engine)
            patient = list_patients(engine, "")[0]
            first, last = patient_span(engine, patient) or (0, 0)
            until = last + 1
            since = first if hours is None else max(first, until - hours * HOUR)
            return patient_view(engine, policy, patient, since, until, tz)
        finally:
            engine.dispose()

    page(None)  # warm imports and the OS page cache: the server is running already
    print(f"{'range':>14}  {'median':>8}  {'max':>8}  drawn: bands / hot slots / retained")
    for label, hours in RANGES.items():
        times, view = timed(repeat, lambda h=hours: page(h))  # type: ignore[misc]
        print(
            f"{label:>14}  {statistics.median(times):7.3f}s  {max(times):7.3f}s  "
            f"{len(view.bands):,} / {len(view.hot):,} / {len(view.retained):,}"
        )


def measure_page(url: str, repeat: int, work: Path) -> None:
    """The whole Patient page script as Streamlit runs it (views, Altair charts, table), on a
    cold ``st.cache_data``, through AppTest: server time, without the browser's rendering."""
    import os

    import streamlit as st
    from argon2 import PasswordHasher
    from streamlit.testing.v1 import AppTest

    from medsleep.auth.users import SessionUser, add_user

    users = work / "bench-users.json"
    if not users.exists():  # the page re-checks its user against the users file
        add_user(users, "benchmark", "admin", None, hasher=PasswordHasher(1, 8, 1))
    os.environ["MEDSLEEP_DB"] = url
    os.environ["MEDSLEEP_USERS"] = str(users)
    os.environ["MEDSLEEP_DASHBOARD_TZ"] = "Europe/Zurich"
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=300)
    at.session_state["user"] = SessionUser("benchmark", "admin")
    at.run()
    at.switch_page("app_pages/patient.py").run()
    print(f"{'page, range':>14}  {'median':>8}  {'max':>8}  (AppTest run of app_pages/patient.py)")
    for label in ("24 h", "7 days", "30 days", "All"):
        at.segmented_control(key="range").set_value(label)
        times = []
        for _ in range(repeat):
            st.cache_data.clear()
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
        assert not at.exception, at.exception
        charts = len(at.get("vega_lite_chart"))
        rows = len(at.dataframe[0].value) if at.dataframe else 0
        print(
            f"{label:>14}  {statistics.median(times):7.3f}s  {max(times):7.3f}s  "
            f"{charts} charts, {rows:,} rows in the why table"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL")
    parser.add_argument("--patients", type=int, default=1)
    parser.add_argument(
        "--browser", action="store_true",
        help="also time login → digest → patient → range switch in headless Chromium",
    )  # fmt: skip
    parser.add_argument(
        "--against", type=Path, metavar="DIR",
        help="with --browser: also run the dashboard of another checkout (say main's) on the "
        "same store, sessions alternating, and print new ÷ old",
    )  # fmt: skip
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.postgres:
            from tests.pg import create_database, postgres_server

            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medsleep-pg-")))
            base.chmod(0o755)
            url = create_database(stack.enter_context(postgres_server(base)))
            work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            work = OUT / f"dashboard-{args.patients}p-{args.days:g}d-seed{args.seed}"
            url = f"sqlite:///{work / 'store.db'}"
        done = work / "built.ok"  # a half-built store (interrupted) is rebuilt, not measured
        if args.postgres or not done.exists():
            if not args.postgres and work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True, exist_ok=True)
            built = build_store(url, work, args.days, args.seed, args.patients)
            done.touch()
            print(
                f"built: {built['readings']:,} readings ingested in {built['ingest_s']:.0f} s, "
                f"consolidated in {built['consolidate_s']:.0f} s"
            )
        counts = store_counts(url)
        print(
            f"{'PostgreSQL' if args.postgres else 'SQLite'} store, {args.patients} patients × "
            f"{args.days:g} "
            f"days: {counts['summarised']:,} readings summarised, {counts['retained']:,} "
            f"retained, {counts['raw']:,} raw (hot), "
            f"{sum(counts.values()):,} in all"
        )
        if args.browser:
            from benchmarks.dashboard_browser import measure_browser

            prepare_digests(url)
            measure_browser(url, work, args.repeat, args.against)
            return
        measure(url, args.repeat)
        measure_page(url, args.repeat, work)


if __name__ == "__main__":
    main()
