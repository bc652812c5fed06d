"""Load test: concurrent HTTP ingest into PostgreSQL while the nightly consolidation runs.

    .venv/bin/python benchmarks/load.py [--observations 1000000] [--clients 8] [--chunk 2000]
        [--workers 2] [--executor processes:2] [--no-fsync] [--work DIR] [--max-minutes 30]

Starts a PostgreSQL server (fsync on unless --no-fsync) and ``medsleep serve --workers N`` on
127.0.0.1, splits synthetic ICU Observations (``medsleep.synth``) into ``--chunk``-line NDJSON
requests dealt round-robin to ``--clients`` threads that POST them to ``/fhir/$ingest``, and runs
``medsleep consolidate --executor ...`` back to back for as long as the clients send (and once
more after). Then it checks that nothing was lost or duplicated: every Observation sent has
exactly one ``resource_seen`` row (or, its readings archived, one ``resource_archived`` row),
and every reading it yields is exactly once either in the hot store or behind an active
summary in the verified archive. Reports sustained Observations/s and
per-request latency percentiles. Every loop is bounded in time and count; nothing leaves
127.0.0.1. Exit status 0 only when every check passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.pg (the same throwaway server the tests use)

from medsleep.ingest.parsing import ParseOptions, parse_chunk  # noqa: E402
from medsleep.ingest.sources import InputRecord  # noqa: E402
from medsleep.store.tables import READING_ROW  # noqa: E402
from medsleep.synth import iter_ndjson  # noqa: E402
from tests.pg import _as_postgres_user, _free_port, create_database, find_pg_bin  # noqa: E402

MEDSLEEP = [sys.executable, "-c", "from medsleep.cli import main; main()"]
OBSERVATIONS_PER_PATIENT_DAY = 5845
RETRIES = 5


# --------------------------------------------------------------------------- setup


@contextmanager
def postgres(base: Path, fsync: bool) -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with the production settings of docs/deploy.md."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (initdb, pg_ctl) found")
    data = base / "pgdata"
    data.mkdir(parents=True)
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run(_as_postgres_user([*initdb, "-E", "UTF8"]), check=True, capture_output=True)
    port = _free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "fsync": "on" if fsync else "off",
        "shared_buffers": "512MB",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "15min",
        "max_connections": "100",
    }
    options = f"-p {port} -k {base} " + " ".join(f"-c {k}={v}" for k, v in settings.items())
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log")]
    subprocess.run(_as_postgres_user([*start, "-w", "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]
        subprocess.run(_as_postgres_user(stop), check=False, capture_output=True)


@dataclass
class Input:
    files: list[Path]
    observations: int
    expected: set[tuple[str, int]]  # (resource key, part) of every reading sent
    keys: set[str]
    bytes: int


_PART = READING_ROW.index("part")


def make_input(work: Path, observations: int, clients: int, chunk: int, days: float) -> Input:
    """Synthetic Observations as ``clients`` NDJSON files, chunks dealt round-robin, and the
    readings they must yield (parsed by the pipeline's own parser, outside the timed run)."""
    patients = max(1, -(-observations // round(OBSERVATIONS_PER_PATIENT_DAY * days)))
    files = [work / f"client-{i}.ndjson" for i in range(clients)]
    handles = [path.open("wb") for path in files]
    expected: set[tuple[str, int]] = set()
    keys: set[str] = set()
    written = size = dealt = 0
    pending: list[bytes] = []

    def flush() -> None:
        nonlocal size, dealt
        records = [InputRecord("load", str(i), line) for i, line in enumerate(pending)]
        for parsed in parse_chunk(records, ParseOptions()):
            assert parsed.error is None, parsed.error
            if parsed.skipped is None:
                keys.add(parsed.key)
                expected.update((parsed.key, int(r[_PART])) for r in parsed.readings)
        data = b"".join(pending)
        handles[dealt % clients].write(data)
        size += len(data)
        dealt += 1
        pending.clear()

    try:
        for block in iter_ndjson(patients, days, seed=11):
            for line in block.encode().splitlines(keepends=True):
                if written == observations:
                    break
                pending.append(line)
                written += 1
                if len(pending) == chunk:
                    flush()
        if pending:
            flush()
    finally:
        for handle in handles:
            handle.close()
    return Input(files, written, expected, keys, size)


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MEDSLEEP, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def serving(db: str, tokens: Path, workers: int, port: int) -> Iterator[tuple[str, int]]:
    args = ["serve", "--db", db, "--tokens", str(tokens), "--port", str(port)]
    args += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen([*MEDSLEEP, *args])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"medsleep serve exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("medsleep serve did not become healthy in 120 s")
            time.sleep(0.25)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- the run


@dataclass
class ClientStats:
    latencies: list[float] = field(default_factory=list)
    totals: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    failures: list[str] = field(default_factory=list)


def sample_rss(pid: int, stop: threading.Event) -> float:
    """Peak RSS (MiB) of the server process and its workers until ``stop``."""
    peak = 0.0
    try:
        parent = psutil.Process(pid)
        while not stop.wait(0.5):
            procs = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs) / 2**20)
    except psutil.Error:
        pass
    return peak


def chunks_of(path: Path, chunk: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        lines: list[bytes] = []
        for line in handle:
            lines.append(line)
            if len(lines) == chunk:
                yield b"".join(lines)
                lines.clear()
        if lines:
            yield b"".join(lines)


def client(base: str, token: str, path: Path, chunk: int, deadline: float) -> ClientStats:
    stats = ClientStats()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+ndjson"}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
        for body in chunks_of(path, chunk):
            for attempt in range(RETRIES):
                if time.monotonic() > deadline:
                    stats.failures.append("deadline passed")
                    return stats
                started = time.perf_counter()
                try:
                    response = http.post("/fhir/$ingest", content=body)
                except httpx.TransportError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code == 200:
                        stats.latencies.append(time.perf_counter() - started)
                        stats.totals.update(
                            {k: v for k, v in response.json().items() if isinstance(v, int)}
                        )
                        break
                    problem = f"HTTP {response.status_code}: {response.text[:300]}"
                stats.retries += 1  # re-sending is safe: duplicates are recognised
                if attempt == RETRIES - 1:
                    stats.failures.append(problem)
                time.sleep(0.5 * (attempt + 1))
    return stats


def consolidations(
    db: str, archive: Path, executor: str, stop: threading.Event, limit: int
) -> list[dict[str, Any]]:
    """Back-to-back consolidation runs until ``stop`` (at most ``limit``), then one more."""
    runs: list[dict[str, Any]] = []
    final = False
    while len(runs) < limit:
        final = stop.is_set()
        started = time.perf_counter()
        args = ["consolidate", "--db", db, "--archive", str(archive), "--executor", executor]
        done = run_cli(*args, "--json", "-q", timeout=3600)
        run: dict[str, Any] = {"exit": done.returncode, "seconds": time.perf_counter() - started}
        if done.returncode == 0 and done.stdout.strip():
            run.update(json.loads(done.stdout.strip().splitlines()[-1]))
        else:
            run["error"] = done.stderr.strip()[-500:]
        run["during_ingest"] = not final
        runs.append(run)
        if final:
            break
        if run.get("status") == "nothing-to-do" or "error" in run:
            stop.wait(2.0)
    return runs


# --------------------------------------------------------------------------- the checks


def verify(db: str, archive: Path, sent: Input) -> dict[str, Any]:
    """Nothing lost, nothing duplicated; the audit chain and the archive verify."""
    from sqlalchemy import select

    from medsleep.archive.index import summarised_readings
    from medsleep.audit import verify_chain
    from medsleep.store.archived_versions import key_digest
    from medsleep.store.engine import open_store
    from medsleep.store.models import IngestBatch, Reading, ResourceArchived, ResourceSeen, Summary

    engine = open_store(db)
    reading = Reading.__table__  # type: ignore[attr-defined]
    seen = ResourceSeen.__table__  # type: ignore[attr-defined]
    archived_versions = ResourceArchived.__table__  # type: ignore[attr-defined]
    summary = Summary.__table__  # type: ignore[attr-defined]
    batch = IngestBatch.__table__  # type: ignore[attr-defined]
    try:
        with engine.connect() as conn:
            # a version whose readings are all archived is kept by its key's digest
            seen_keys = [key_digest(r[0]) for r in conn.execute(select(seen.c.resource_key))]
            seen_keys += [bytes(r[0]) for r in conn.execute(select(archived_versions.c.key_digest))]
            hot = [
                (str(k), int(p))
                for k, p in conn.execute(
                    select(reading.c.resource_key, reading.c.part).where(
                        reading.c.state.in_(("raw", "retained"))
                    )
                )
            ]
            active = conn.execute(select(summary).where(summary.c.state == "active")).all()
            archived_frame = summarised_readings(conn, archive, active)
            archived = list(
                zip(
                    archived_frame["resource_key"].astype(str),
                    archived_frame["part"].astype(int),
                    strict=True,
                )
            )
            chain = verify_chain(conn)
            batches = Counter(r[0] for r in conn.execute(select(batch.c.status)))
    finally:
        engine.dispose()
    together = Counter(hot) + Counter(archived)
    duplicated = sum(n - 1 for n in together.values() if n > 1)
    checks = {
        "observations_sent": sent.observations,
        "resource_seen_rows": len(seen_keys),
        "resource_seen_match_sent": len(seen_keys) == len(set(seen_keys))
        and set(seen_keys) == {key_digest(k) for k in sent.keys},
        "readings_expected": len(sent.expected),
        "readings_hot": len(hot),
        "readings_archived": len(archived),
        "readings_duplicated": duplicated,
        "readings_lost": len(sent.expected - set(together)),
        "readings_unexpected": len(set(together) - sent.expected),
        "audit_chain_ok": chain.ok,
        "audit_events": chain.events,
        "ingest_batches": dict(batches),
    }
    verified = run_cli("archive", "verify", "--db", db, "--archive", str(archive), "--json")
    checks["archive_verify_exit"] = verified.returncode
    checks["ok"] = (
        checks["resource_seen_match_sent"]
        and duplicated == 0
        and checks["readings_lost"] == 0
        and checks["readings_unexpected"] == 0
        and chain.ok
        and set(batches) == {"done"}
        and verified.returncode == 0
    )
    return checks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=2000, help="Observations per request")
    parser.add_argument("--workers", type=int, default=2, help="medsleep serve processes")
    parser.add_argument(
        "--executor", default="processes:2", help="consolidate --executor (none: no consolidation)"
    )
    parser.add_argument("--days", type=float, default=1.0, help="days per synthetic patient")
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL fsync=off")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="give up after this")
    parser.add_argument("--max-consolidations", type=int, default=100)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medsleep-load-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # the PostgreSQL server runs as its own user and must reach pg/

    t = time.perf_counter()
    sent = make_input(work, args.observations, args.clients, args.chunk, args.days)
    print(
        f"input: {sent.observations:,} Observations ({len(sent.expected):,} readings, "
        f"{sent.bytes / 2**20:,.0f} MiB) for {args.clients} clients in "
        f"{time.perf_counter() - t:.0f} s",
        flush=True,
    )
    with postgres(work / "pg", fsync=not args.no_fsync) as admin:
        db = create_database(admin)
        assert run_cli("db", "upgrade", "--db", db).returncode == 0
        tokens = work / "tokens.toml"
        made = run_cli("token", "add", "load", "--tokens", str(tokens))
        token = made.stdout.strip()
        archive = work / "archive"
        with serving(db, tokens, args.workers, _free_port()) as (base, pid):
            stop = threading.Event()
            with ThreadPoolExecutor(2) as background:
                rss = background.submit(sample_rss, pid, stop)
                nightly = background.submit(
                    consolidations,
                    db,
                    archive,
                    args.executor,
                    stop,
                    0 if args.executor == "none" else args.max_consolidations,
                )
                deadline = time.monotonic() + args.max_minutes * 60
                started = time.perf_counter()
                with ThreadPoolExecutor(args.clients) as pool:
                    stats = list(
                        pool.map(
                            lambda path: client(base, token, path, args.chunk, deadline),
                            sent.files,
                        )
                    )
                ingest_seconds = time.perf_counter() - started
                stop.set()
                runs = nightly.result(timeout=args.max_minutes * 60)
                server_rss = rss.result()
        with psycopg.connect(db) as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        checks = verify(db, archive, sent)

    latencies = [x for s in stats for x in s.latencies]
    totals: Counter[str] = Counter()
    for s in stats:
        totals.update(s.totals)
    during = [r for r in runs if r["during_ingest"]]
    result = {
        "observations": sent.observations,
        "clients": args.clients,
        "chunk": args.chunk,
        "server_workers": args.workers,
        "fsync": not args.no_fsync,
        "ingest_seconds": round(ingest_seconds, 1),
        "observations_per_second": round(sent.observations / ingest_seconds),
        "readings_per_second": round(len(sent.expected) / ingest_seconds),
        "requests": len(latencies),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 95), 3),
        "latency_p99_s": round(percentile(latencies, 99), 3),
        "latency_max_s": round(max(latencies, default=0.0), 3),
        "retries": sum(s.retries for s in stats),
        "server_peak_rss_mb": round(server_rss),
        "failures": [f for s in stats for f in s.failures][:10],
        "server_counts": {k: totals[k] for k in ("resources", "stored", "duplicates")},
        "consolidations_during_ingest": len(during),
        "consolidation_statuses": dict(Counter(str(r.get("status", r["exit"])) for r in runs)),
        "consolidation_errors": [r["error"] for r in runs if "error" in r][:5],
        "collapsed_during_ingest": sum(int(r.get("collapsed", 0)) for r in during),
        "database_mb": round(int(size[0]) / 2**20) if size else None,
        "checks": checks,
    }
    print(json.dumps(result, indent=2))
    ok = checks["ok"] and not result["failures"] and not result["consolidation_errors"]
    print(
        f"\n{'PASS' if ok else 'FAIL'}: {sent.observations:,} Observations in "
        f"{ingest_seconds:,.0f} s = {result['observations_per_second']:,} Observations/s "
        f"({args.clients} clients, {args.chunk}/request, {args.workers} server workers); "
        f"request latency p50 {result['latency_p50_s']} s, p99 {result['latency_p99_s']} s; "
        f"{len(during)} consolidation runs during ingest"
    )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
