"""Compliance pages through AppTest: legal holds (add, release, who and why, audited, shown on
the digest), collapsed stretches with an audited verify and restore-with-reason, the audit
filter, and the audit of every patient view."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

import tests.dashboard.test_dashboard_app as dashboard_app
from medsleep.store.tables import READING
from tests.dashboard.test_dashboard_app import PAGE_FILES, app, events, titles

dash, users_template = dashboard_app.dash, dashboard_app.users_template  # the same fixtures


def test_holds_are_added_and_released_with_who_and_why(dash: Engine) -> None:
    at = app("cleo")
    at.switch_page(PAGE_FILES["holds"]).run()
    assert titles(at) == ["Legal holds"]
    assert at.info[0].value == "No patient is on legal hold."
    at.selectbox(key="hold_patient").select("icu-0002")
    at.text_input(key="hold_reason").input("case 2026-17")
    at.button(key="hold_add_submit").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["patient"]) == ["icu-0002"]
    assert list(table["by"]) == ["cleo"]
    assert list(table["reason"]) == ["case 2026-17"]
    assert table["since"].str.endswith(("CET", "CEST")).all()  # one time zone throughout
    assert events(dash)[-1] == ("cleo", "hold.add", {"patient": "icu-0002",
                                                     "reason": "case 2026-17"})  # fmt: skip

    digest = app("ana")  # the clinician's digest says so
    rows = digest.dataframe[0].value.set_index("patient")
    assert rows.loc["icu-0002", "status"] == "legal hold: scored from raw readings"

    at.selectbox(key="release_patient").select("icu-0002")
    at.button(key="hold_release_submit").click().run()
    assert at.info[0].value == "No patient is on legal hold."
    assert events(dash)[-1] == ("cleo", "hold.release", {"patient": "icu-0002"})


def test_collapsed_stretches_are_listed_verified_and_restored_with_a_reason(
    dash: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDSLEEP_ARCHIVE", str(Path(str(dash.url.database)).parent / "archive"))
    at = app("root")
    at.switch_page(PAGE_FILES["archive"]).run()
    at.selectbox(key="stretch_patient").select("icu-0001").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) >= 1
    assert table["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert table["policy_digest"].str.fullmatch(r"[0-9a-f]{64}").all()
    at.button(key="stretch_verify").click().run()
    assert at.success[0].value.endswith("sha256 and row count match its record.")
    actor, action, details = events(dash)[-1]
    assert (actor, action, details["ok"]) == ("root", "archive.verify_file", True)

    at.button(key="stretch_restore_submit").click().run()
    assert at.error[0].value == "A restore needs a reason."
    at.text_input(key="restore_reason").input("audit request 42")
    at.button(key="stretch_restore_submit").click().run()
    assert not at.exception
    assert at.success[-1].value.startswith("Restored ")
    actor, action, details = events(dash)[-1]
    assert (actor, action, details["reason"]) == ("root", "restore", "audit request 42")
    assert details["patient"] == "icu-0001"
    with dash.connect() as conn:
        raw = conn.execute(
            select(func.count()).where(READING.c.patient == "icu-0001", READING.c.state == "raw")
        ).scalar_one()
    assert raw == details["readings"] > 0


def test_every_patient_view_is_audited_and_the_audit_table_filters(dash: Engine) -> None:
    at = app("ana")
    at.switch_page(PAGE_FILES["patient"]).run()
    at.selectbox(key="pick").select("icu-0003").run()
    views = [d for a, action, d in events(dash) if action == "dashboard.view_patient"]
    assert [v["patient"] for v in views][-1] == "icu-0003"
    count = len(views)
    at.run()  # the same view again in the same session: no second entry
    assert len([1 for _, a, _ in events(dash) if a == "dashboard.view_patient"]) == count

    cleo = app("cleo")
    cleo.switch_page(PAGE_FILES["compliance"]).run()
    cleo.selectbox(key="audit_action").select("dashboard.view_patient")
    cleo.text_input(key="audit_text").input("icu-0003").run()
    counted = [c.value for c in cleo.main.caption if c.value.endswith("at most 500).")]
    assert counted[0].startswith("1 entries")
    table = cleo.dataframe[-1].value
    assert set(table["action"]) == {"dashboard.view_patient"}
    assert set(table["actor"]) == {"ana"}
    cleo.text_input(key="audit_actor").input("nobody").run()
    counted = [c.value for c in cleo.main.caption if c.value.endswith("at most 500).")]
    assert counted[0].startswith("0 entries")
