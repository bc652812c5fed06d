"""Purge: archive files past retention go, held patients' and young files never do, and every
removal is on the audit chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from medsleep.archive.holds import add_hold
from medsleep.archive.purge import PurgeError, purge, retention_cutoff_ms
from medsleep.audit import verify_chain
from medsleep.cli import app
from medsleep.errors import LockHeldError
from medsleep.policy import DEFAULT_POLICY_NAME
from medsleep.store.handle import Store as Handle
from medsleep.store.locking import consolidation_lock
from medsleep.store.models import ArchiveFileRecord, AuditEvent, Summary
from medsleep.timefmt import iso, parse_iso_ms, wall_clock_ms
from tests.export.test_export import Store, store  # noqa: F401

ARCHIVE = ArchiveFileRecord.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
SUMMARY = Summary.__table__  # type: ignore[attr-defined]
BEFORE = parse_iso_ms("2026-02-01T00:00:00Z")  # the sample's run archived readings before this
YEAR_MS = 366 * 86_400_000


def later() -> int:
    """Eight years after the files were archived: past the default seven-year retention."""
    return wall_clock_ms() + 8 * YEAR_MS


def files(s: Store) -> dict[str, Any]:
    with s.engine.connect() as conn:
        return {r.name: r for r in conn.execute(select(ARCHIVE).order_by(ARCHIVE.c.name))}


def summaries(s: Store) -> list[tuple[Any, ...]]:
    with s.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(SUMMARY).order_by(SUMMARY.c.id))]


def audit(s: Store) -> list[Any]:
    with s.engine.connect() as conn:
        return list(conn.execute(select(AUDIT).order_by(AUDIT.c.seq)))


def run_purge(s: Store, **kwargs: Any) -> Any:
    now = kwargs.pop("now_ms", None) or later()
    actor = kwargs.pop("actor", "cli")
    options = {"before_ms": BEFORE, "archive_years": 7, **kwargs}
    return purge(Handle(s.engine, s.archive, clock=lambda: now, actor=actor), **options)


def test_files_past_retention_are_purged_and_audited(store: Store) -> None:  # noqa: F811
    before = summaries(store)
    names = list(files(store))
    report = run_purge(store)
    assert sorted(f.name for f in report.purged) == names
    assert report.ok
    assert {r.state for r in files(store).values()} == {"purged"}
    assert not any((store.archive / name).exists() for name in names)
    assert summaries(store) == before  # summaries keep their statistics and file names
    events = [e for e in audit(store) if e.action == "purge"]
    assert len(events) == len(report.audit_seqs) == 3  # one per patient
    details = [json.loads(e.details_json) for e in events]
    assert {d["patient"] for d in details} == {"icu-0001", "icu-0002", "icu-0003"}
    purged = {f["name"]: f for d in details for f in d["purged"]}
    assert set(purged) == set(names)
    assert all(purged[n]["sha256"] == r.sha256 for n, r in files(store).items())
    with store.engine.connect() as conn:
        assert verify_chain(conn).ok
    again = run_purge(store)
    assert (again.purged, again.held, again.problems, again.audit_seqs) == ([], [], [], [])


def test_a_held_patients_files_are_refused(store: Store) -> None:  # noqa: F811
    add_hold(
        Handle(store.engine, actor="test"),
        "icu-0002",
        "litigation 42",
    )
    report = run_purge(store)
    assert [f.patient for f in report.held] == ["icu-0002"]
    assert "legal hold" in report.held[0].reason
    assert {f.patient for f in report.purged} == {"icu-0001", "icu-0003"}
    assert report.ok  # a refusal is the rule working, not a failure
    held_file = report.held[0].name
    assert (store.archive / held_file).exists()
    assert files(store)[held_file].state == "active"
    refusal = [
        json.loads(e.details_json)
        for e in audit(store)
        if e.action == "purge" and '"icu-0002"' in e.details_json
    ]
    assert refusal == [
        {
            "patient": "icu-0002",
            "before_ms": BEFORE,
            "retention_cutoff_ms": report.retention_cutoff_ms,
            "readings": 0,
            "purged": [],
            "refused_hold": [held_file],
        }
    ]


def test_files_within_retention_are_never_purged(store: Store) -> None:  # noqa: F811
    young = run_purge(store, now_ms=wall_clock_ms())  # just archived
    assert young.purged == []
    assert len(young.within_retention) == 3
    # ... nor when the data is old enough but the policy keeps it longer
    long_kept = run_purge(store, archive_years=100)
    assert long_kept.purged == []
    assert len(long_kept.within_retention) == 3
    assert {r.state for r in files(store).values()} == {"active"}
    assert all((store.archive / name).exists() for name in files(store))
    assert not [e for e in audit(store) if e.action == "purge"]


def test_before_decides_which_files_are_due(store: Store) -> None:  # noqa: F811
    # The files hold readings of 2026-01-05: none is due before noon that day.
    noon = run_purge(store, before_ms=parse_iso_ms("2026-01-05T12:00:00Z"))
    assert (noon.purged, noon.within_retention, noon.problems) == ([], [], [])
    next_day = run_purge(store, before_ms=parse_iso_ms("2026-01-06T00:00:00Z"))
    assert len(next_day.purged) == 3
    assert all(f.newest_ms is not None and f.newest_ms < BEFORE for f in next_day.purged)


def test_a_file_that_fails_its_checksum_is_left_alone(store: Store) -> None:  # noqa: F811
    name = next(iter(files(store)))
    (store.archive / name).write_bytes(b"not what was archived")
    report = run_purge(store)
    assert [p.name for p in report.problems] == [name]
    assert "checksum" in report.problems[0].reason
    assert not report.ok
    assert (store.archive / name).read_bytes() == b"not what was archived"
    assert files(store)[name].state == "active"
    assert len(report.purged) == 2


def test_a_dry_run_changes_nothing(store: Store) -> None:  # noqa: F811
    add_hold(Handle(store.engine, actor="test"), "icu-0003", "audit")
    before = audit(store)
    report = run_purge(store, dry_run=True)
    assert len(report.purged) == 2
    assert [f.patient for f in report.held] == ["icu-0003"]
    assert audit(store) == before
    assert {r.state for r in files(store).values()} == {"active"}
    assert all((store.archive / name).exists() for name in files(store))


def test_an_interrupted_purge_is_finished_next_time(store: Store) -> None:  # noqa: F811
    name = next(iter(files(store)))
    with store.engine.begin() as conn:  # committed, then the process died before unlinking
        conn.execute(update(ARCHIVE).where(ARCHIVE.c.name == name).values(state="purged"))
    report = run_purge(store, now_ms=wall_clock_ms())  # nothing else is due yet
    assert report.leftovers_removed == [name]
    assert not (store.archive / name).exists()


def test_purge_waits_for_no_consolidation(store: Store) -> None:  # noqa: F811
    with consolidation_lock(store.engine), pytest.raises(LockHeldError):
        run_purge(store)


def test_retention_cutoff_counts_calendar_years() -> None:
    leap = parse_iso_ms("2028-02-29T12:00:00Z")
    assert iso(retention_cutoff_ms(leap, 7)) == "2021-02-28T12:00:00Z"
    assert iso(retention_cutoff_ms(leap, 8)) == "2020-02-29T12:00:00Z"
    now = parse_iso_ms("2026-11-26T00:00:00Z")
    assert iso(retention_cutoff_ms(now, 0.5)) == "2026-05-27T00:00:00Z"  # 183 days
    assert retention_cutoff_ms(now, 0) == now
    with pytest.raises(PurgeError):
        retention_cutoff_ms(now, -1)


def _policy(tmp_path: Path, years: float) -> Path:
    from importlib import resources

    text = resources.files("medsleep").joinpath(DEFAULT_POLICY_NAME).read_text()
    path = tmp_path / "policy.toml"
    path.write_text(text.replace("archive_years = 7 ", f"archive_years = {years} "))
    return path


def test_cli_purge_reports_refusals_and_fails_on_problems(store: Store, tmp_path: Path) -> None:  # noqa: F811
    runner = CliRunner()
    base = ["purge", "--before", "2026-02-01", "--db", store.url, "--archive", str(store.archive)]
    policy = ["--policy", str(_policy(tmp_path, 0))]  # retention 0: everything archived is due
    add_hold(Handle(store.engine, actor="test"), "icu-0001", "case 7")
    dry = runner.invoke(app, [*base, *policy, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["dry_run"] is True
    done = runner.invoke(app, [*base, *policy])
    assert done.exit_code == 0, done.output
    assert "purged 2 archive files" in done.stderr
    assert "refused 1 files of patients on legal hold: icu-0001" in done.stderr
    held_file = next(n for n, r in files(store).items() if r.state == "active")
    (store.archive / held_file).write_bytes(b"x")
    from medsleep.archive.holds import release_hold

    release_hold(Handle(store.engine, actor="test"), "icu-0001")
    failed = runner.invoke(app, [*base, *policy])
    assert failed.exit_code == 1
    assert f"FAIL {held_file}" in failed.stderr
    young = runner.invoke(app, base)  # the shipped policy keeps seven years: not even opened
    assert young.exit_code == 0
    assert "purged 0 archive files (0 readings) before 2026-02-01T00:00:00Z;" in young.stderr
    assert "kept 1 files within retention" in young.stderr
