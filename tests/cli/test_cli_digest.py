"""The morning digest prepared from the command line: after ``consolidate`` (sleep-time
compute) and on demand with ``digest prepare``; the dashboard then shows the stored one."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from medsleep.policy import load_policy
from medsleep.read.prepared import current_digest
from medsleep.store.engine import open_store
from medsleep.store.tables import PREPARED_DIGEST
from tests.cli.test_cli_consolidate import ingested, run  # noqa: F401, F811  (fixture)

POLICY = load_policy()


def _prepared(url: str) -> list[tuple[int, int, str]]:
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            p = PREPARED_DIGEST.c
            return [tuple(r) for r in conn.execute(select(p.night_start_ms, p.night_end_ms, p.tz))]
    finally:
        engine.dispose()


def test_consolidate_prepares_the_nights_it_covered(
    ingested: tuple[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, archive = ingested
    monkeypatch.setenv("MEDSLEEP_DASHBOARD_TZ", "Europe/Zurich")
    code, _, err = run("consolidate", "--db", url, "--archive", archive, "--until", "2026-02-01")
    assert code == 0, err
    assert "prepared" in err
    nights = _prepared(url)
    assert nights
    assert {tz for _, _, tz in nights} == {"Europe/Zurich"}
    engine = open_store(url)
    try:
        since, until, _ = max(nights)
        digest, source = current_digest(engine, POLICY, ZoneInfo("Europe/Zurich"), since, until,
                                        now_ms=until + 1)  # fmt: skip
        assert source.prepared
        assert digest.rows
    finally:
        engine.dispose()


def test_digest_prepare_scores_a_chosen_night(ingested: tuple[str, str]) -> None:  # noqa: F811
    url, _ = ingested
    code, out, err = run("digest", "prepare", "--db", url, "--night-ending", "2026-01-06",
                         "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["patients"] >= 1
    assert len(_prepared(url)) == 1
    code, _, err = run("digest", "prepare", "--db", url, "--night-ending", "2999-01-01")
    assert code == 2
    assert "not ended" in err
    code, _, err = run("digest", "prepare", "--db", url, "--night-ending", "6 Jan")
    assert code == 2
