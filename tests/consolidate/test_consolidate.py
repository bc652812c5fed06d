"""The nightly job: keeps what matters, collapses the rest, loses nothing, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from medsleep.archive.holds import add_hold
from medsleep.consolidate.executors import parse_executor
from medsleep.consolidate.job import consolidate
from medsleep.errors import LockHeldError
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.handle import Store
from medsleep.store.locking import consolidation_lock
from medsleep.store.models import Episode, Retention, Run, Summary
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SAMPLE
from tests.helpers import (
    READING,
    check_conservation,
    observation,
    reading_ids,
    readings,
    write_ndjson,
)

UNTIL = parse_iso_ms("2026-02-01T00:00:00+00:00")
POLICY = load_policy()


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _table_counts(engine: Engine) -> dict[str, int]:
    return {
        t.__tablename__: _count(engine, t.__table__)  # type: ignore[attr-defined]
        for t in (Summary, Retention, Episode, Run)
    } | {"reading": _count(engine, READING)}


@pytest.fixture
def sample_store(db_url: str, engine: Engine) -> tuple[str, Engine, set[int]]:
    ingest_paths(engine, [str(SAMPLE)])
    return db_url, engine, reading_ids(engine)


def test_sample_night_keeps_what_matters_and_loses_nothing(
    sample_store: tuple[str, Engine, set[int]], tmp_path: Path
) -> None:
    url, engine, before = sample_store
    report = consolidate(Store.open(url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert report.status == "committed"
    assert report.readings_in == len(before)
    assert report.readings_in == report.retained + report.collapsed
    assert report.archived == report.collapsed
    assert report.retained > 0
    assert report.summaries > 0
    assert report.episodes > 0
    counts = check_conservation(engine, tmp_path / "arch", before)
    assert counts["archived"] == report.collapsed
    retained = readings(engine, state="retained")
    assert len(retained) == report.retained
    with engine.connect() as conn:
        reasons = {r.reading_id for r in conn.execute(select(Retention.__table__))}  # type: ignore[attr-defined]
    assert {r["id"] for r in retained} <= reasons  # every kept reading says why


def test_second_run_with_no_new_data_changes_nothing(
    sample_store: tuple[str, Engine, set[int]], tmp_path: Path
) -> None:
    url, engine, _ = sample_store
    consolidate(Store.open(url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    before = _table_counts(engine)
    again = consolidate(Store.open(url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert again.status == "nothing-to-do"
    assert again.run_id is None
    assert _table_counts(engine) == before


def test_every_news2_critical_reading_is_retained(
    sample_store: tuple[str, Engine, set[int]], tmp_path: Path
) -> None:
    url, engine, _ = sample_store
    critical = set()
    for row in readings(engine):
        rules = POLICY.for_code(row["code"])
        if rules is None:
            continue
        implausible = rules.plausible and not (
            rules.plausible[0] <= row["value"] <= rules.plausible[1]
        )
        lab_critical = rules.critical and not (
            rules.critical[0] <= row["value"] <= rules.critical[1]
        )
        if (rules.news2_score(row["value"]) == 3 and not implausible) or lab_critical:
            critical.add(row["id"])
    assert critical, "the sample holds rule-critical readings"
    consolidate(Store.open(url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    kept = {r["id"] for r in readings(engine, state="retained")}
    assert critical <= kept


def test_late_data_recomputes_the_bucket_exactly(
    tmp_path: Path, engine: Engine, db_url: str
) -> None:
    hour = [
        observation(f"hr-{m}", value=70 + m % 3, when=f"2026-01-05T10:{m:02d}:00Z")
        for m in range(0, 60, 2)
    ]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "a.ndjson", hour))])
    first = consolidate(Store.open(db_url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert first.collapsed > 0
    late = [observation("hr-late", value=71, when="2026-01-05T10:31:00Z")]
    ingest_paths(engine, [str(write_ndjson(tmp_path / "b.ndjson", late))])
    second = consolidate(Store.open(db_url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert second.superseded_summaries >= 1
    check_conservation(engine, tmp_path / "arch", reading_ids_ever(engine, tmp_path / "arch"))


def reading_ids_ever(engine: Engine, archive_root: Path) -> set[int]:
    """Ids of readings hot now or archived in any recorded file."""
    from medsleep.archive.files import read_archive_file
    from medsleep.store.models import ArchiveFileRecord

    table = ArchiveFileRecord.__table__  # type: ignore[attr-defined]
    ids = {r["id"] for r in readings(engine) if r["state"] in ("raw", "retained")}
    with engine.connect() as conn:
        for name, sha in conn.execute(select(table.c.name, table.c.sha256)):
            ids |= {int(i) for i in read_archive_file(archive_root, name, sha)["id"]}
    return ids


def test_legal_hold_keeps_a_patient_raw(
    sample_store: tuple[str, Engine, set[int]], tmp_path: Path
) -> None:
    url, engine, _ = sample_store
    held_before = len(readings(engine, patient="icu-0002"))
    add_hold(Store(engine, clock=lambda: 0, actor="test"), "icu-0002", "litigation")
    report = consolidate(Store.open(url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert report.held == held_before
    held_rows = readings(engine, patient="icu-0002")
    assert len(held_rows) == held_before
    assert {r["state"] for r in held_rows} == {"raw"}


def test_lock_held_by_another_run(
    sample_store: tuple[str, Engine, set[int]], tmp_path: Path
) -> None:
    url, engine, _ = sample_store
    with consolidation_lock(engine), pytest.raises(LockHeldError):
        consolidate(Store.open(url, tmp_path / "arch"), POLICY, until_ms=UNTIL)


def test_deadline_stops_between_patients_and_next_run_resumes(
    sample_store: tuple[str, Engine, set[int]], tmp_path: Path
) -> None:
    url, engine, before = sample_store
    ticks = iter(range(0, 10**9, 1000))

    def clock() -> int:
        return next(ticks)

    partial = consolidate(
        Store.open(url, tmp_path / "arch", clock=clock), POLICY, until_ms=UNTIL, deadline_ms=3500
    )
    assert partial.status == "partial"
    assert 0 < partial.shards_done < partial.shards
    rest = consolidate(Store.open(url, tmp_path / "arch"), POLICY, until_ms=UNTIL)
    assert rest.status == "committed"
    assert partial.shards_done + rest.shards_done == 3
    check_conservation(engine, tmp_path / "arch", before)


def test_process_pool_gives_the_same_result_as_local(tmp_path: Path) -> None:
    from medsleep.store.engine import open_store

    results = []
    for name, executor in (("local", "local"), ("pool", "processes:2")):
        url = f"sqlite:///{tmp_path / name}.db"
        engine = open_store(url)
        ingest_paths(engine, [str(SAMPLE)])
        report = consolidate(
            Store.open(url, tmp_path / name),
            POLICY,
            until_ms=UNTIL,
            executor=parse_executor(executor),
        )
        # every shard of the night in one process too: a library that opens the store a
        # second way in-process (ADBC's own SQLite, tried once) failed each after the first
        assert report.failed == []
        assert report.status == "committed"
        assert report.shards_done == report.shards >= 3
        retained = sorted(
            (r["resource_key"], r["part"]) for r in readings(engine, state="retained")
        )
        with engine.connect() as conn:
            summaries = sorted(
                tuple(row)
                for row in conn.execute(
                    select(
                        *[
                            Summary.__table__.c[c]
                            for c in (  # type: ignore[attr-defined]
                                "patient",
                                "code",
                                "band",
                                "bucket_start_ms",
                                "n",
                                "mean",
                                "median",
                            )
                        ]
                    )
                )
            )
        results.append((retained, summaries))
        engine.dispose()
    assert results[0] == results[1]


def test_unknown_detector_in_policy_fails_before_any_work(tmp_path: Path) -> None:
    from dataclasses import replace

    from medsleep.errors import PolicyError

    url = f"sqlite:///{tmp_path / 'x.db'}"
    hr = replace(POLICY.codes["8867-4"], detector="NoSuchModel")
    bad = replace(POLICY, codes={**POLICY.codes, "8867-4": hr})
    with pytest.raises(PolicyError, match="NoSuchModel"):
        consolidate(Store.open(url, tmp_path / "a"), bad, until_ms=UNTIL)


def test_hold_placed_during_a_run_stops_that_patient(
    sample_store: tuple[str, Engine, set[int]], tmp_path: Path
) -> None:
    from medsleep.consolidate.shard import ShardTask, consolidate_shard

    url, engine, _ = sample_store
    add_hold(Store(engine, clock=lambda: 0, actor="test"), "icu-0003", "placed mid-run")
    task = ShardTask(url, str(tmp_path / "a"), 1, 1, "icu-0003", UNTIL, POLICY, 0)
    result = consolidate_shard(task)
    assert (result.held, result.collapsed, result.retained) == (1, 0, 0)
    assert {r["state"] for r in readings(engine, patient="icu-0003")} == {"raw"}


def test_partial_restore_then_new_run_then_full_restore(
    sample_store: tuple[str, Engine, set[int]], tmp_path: Path
) -> None:
    from medsleep.archive.restore import restore

    url, engine, before = sample_store
    arch = tmp_path / "arch"
    consolidate(Store.open(url, arch), POLICY, until_ms=UNTIL)
    hour = parse_iso_ms("2026-01-05T10:00:00+00:00")
    restore(
        Store(engine, arch, clock=lambda: 1),
        patient="icu-0001",
        since_ms=hour,
        until_ms=hour + 3_600_000,
    )
    consolidate(Store.open(url, arch), POLICY, until_ms=UNTIL)
    check_conservation(engine, arch, before)
    report = restore(Store(engine, arch, clock=lambda: 2), patient="icu-0001")
    assert report.readings > 0
    check_conservation(engine, arch, before)
