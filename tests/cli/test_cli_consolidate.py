"""The nightly job from the command line: JSON report, exit codes, restore, archive verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsleep.cli import app
from medsleep.consolidate.executors import ExecutorSpec
from medsleep.consolidate.schedule import quiet_window, sleep_loop
from medsleep.policy import Policy, load_policy
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.locking import consolidation_lock
from tests.conftest import SAMPLE
from tests.helpers import readings

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def ingested(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert run("ingest", str(SAMPLE), "--db", url)[0] == 0
    return url, str(tmp_path / "archive")


def test_consolidate_json_report(ingested: tuple[str, str]) -> None:
    url, archive = ingested
    code, out, _ = run(
        "consolidate", "--db", url, "--archive", archive, "--until", "2026-02-01", "--json"
    )
    assert code == 0
    report = json.loads(out)
    for key in (
        "run_id",
        "status",
        "readings_in",
        "retained",
        "collapsed",
        "summaries",
        "archived",
        "held",
        "seconds",
    ):
        assert key in report
    assert report["status"] == "committed"
    assert report["readings_in"] == report["retained"] + report["collapsed"]
    code, out, _ = run(
        "consolidate", "--db", url, "--archive", archive, "--until", "2026-02-01", "--json"
    )
    assert (code, json.loads(out)["status"]) == (0, "nothing-to-do")
    code, out, _ = run("runs", "--db", url, "--json")
    assert json.loads(out.splitlines()[0])["status"] == "committed"


def test_lock_held_exits_4(ingested: tuple[str, str]) -> None:
    url, archive = ingested
    engine = open_store(url)
    with consolidation_lock(engine):
        code, _, err = run(
            "consolidate", "--db", url, "--archive", archive, "--until", "2026-02-01"
        )
    assert code == 4


def test_restore_and_verify_from_the_cli(ingested: tuple[str, str]) -> None:
    url, archive = ingested
    run("consolidate", "--db", url, "--archive", archive, "--until", "2026-02-01")
    engine = open_store(url)
    hot_after_run = len(readings(engine))
    assert run("archive", "verify", "--db", url, "--archive", archive)[0] == 0
    code, out, _ = run("restore", "--db", url, "--archive", archive, "--run", "1", "--json")
    assert code == 0
    restored = json.loads(out)["readings"]
    assert restored > 0
    assert len(readings(engine)) == hot_after_run + restored
    code, out, _ = run("restore", "--db", url, "--archive", archive, "--run", "1", "--json")
    assert json.loads(out)["readings"] == 0  # idempotent
    assert run("restore", "--db", url, "--archive", archive)[0] == 2


def test_corrupt_archive_file_fails_verify(ingested: tuple[str, str]) -> None:
    url, archive = ingested
    run("consolidate", "--db", url, "--archive", archive, "--until", "2026-02-01")
    victim = sorted(Path(archive).rglob("*.parquet"))[0]
    victim.chmod(0o600)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, out, _ = run("archive", "verify", "--db", url, "--archive", archive, "--json")
    assert code == 1
    assert json.loads(out)["failed"][0]["name"].endswith(victim.name)


def test_query_summaries_carry_statistics(ingested: tuple[str, str]) -> None:
    url, archive = ingested
    run("consolidate", "--db", url, "--archive", archive, "--until", "2026-02-01")
    code, out, _ = run(
        "query",
        "summaries",
        "--db",
        url,
        "--patient",
        "icu-0001",
        "--code",
        "8867-4",
        "--format",
        "jsonl",
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert rows
    assert all(r["min"] <= r["median"] <= r["max"] and r["n"] >= 1 for r in rows)
    code, out, _ = run("query", "readings", "--db", url, "--state", "retained", "--format", "jsonl")
    kept = [json.loads(line) for line in out.splitlines()]
    assert kept
    assert all(r["reasons"] for r in kept)


def _policy(quiet: str, zone: str = "UTC") -> Policy:
    from dataclasses import replace

    start, end = (time.fromisoformat(p) for p in quiet.split("-"))
    return replace(load_policy(), quiet_start=start, quiet_end=end, timezone=zone)


def test_quiet_window_inside_and_before() -> None:
    policy = _policy("01:00-05:00")
    start, end = quiet_window(policy, datetime(2026, 1, 5, 2, 30, tzinfo=UTC))
    assert (start.hour, end.hour, start.day) == (1, 5, 5)
    start, _ = quiet_window(policy, datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    assert (start.day, start.hour) == (6, 1)


def test_quiet_window_crossing_midnight() -> None:
    policy = _policy("22:00-04:00")
    start, end = quiet_window(policy, datetime(2026, 1, 6, 1, 0, tzinfo=UTC))
    assert (start.day, start.hour, end.day, end.hour) == (5, 22, 6, 4)


def test_sleep_waits_for_quiet_hours_then_consolidates(ingested: tuple[str, str]) -> None:
    url, archive = ingested
    now = [datetime(2026, 3, 1, 0, 0, tzinfo=UTC).timestamp() * 1000]
    waits: list[float] = []

    def pause(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds * 1000

    reports = list(
        sleep_loop(
            Store.open(url, Path(archive), clock=lambda: int(now[0])),
            _policy("01:00-05:00"),
            executor=ExecutorSpec("local"),
            once=True,
            pause=pause,
        )
    )
    assert waits == [3600.0]  # slept until 01:00
    assert [r.status for r in reports] == ["committed"]


def test_sleep_skips_a_window_without_enough_backlog(ingested: tuple[str, str]) -> None:
    from dataclasses import replace

    from medsleep.consolidate.executors import ExecutorSpec

    url, archive = ingested
    policy = replace(_policy("01:00-05:00"), min_backlog=10**9)
    now = [datetime(2026, 3, 1, 2, 0, tzinfo=UTC).timestamp() * 1000]
    reports = list(
        sleep_loop(
            Store.open(url, Path(archive), clock=lambda: int(now[0])),
            policy,
            executor=ExecutorSpec("local"),
            once=True,
            pause=lambda s: None,
        )
    )
    assert reports == []
    assert {r["state"] for r in readings(open_store(url))} == {"raw"}
