"""The Morning digest page through AppTest: one row per patient for the real night window,
the last night with data when the store is behind (and it says so), reviews that are audited
and shown to the next viewer."""

from __future__ import annotations

from sqlalchemy import Engine

import tests.dashboard.test_dashboard_app as dashboard_app
from tests.dashboard.test_dashboard_app import app, events, titles
from tests.dashboard.test_dashboard_data import PATIENTS

dash, users_template = dashboard_app.dash, dashboard_app.users_template  # the same fixtures


def test_digest_has_one_row_per_patient_for_the_last_night_with_data(dash: Engine) -> None:
    at = app("ana")
    assert not at.exception
    assert titles(at) == ["Morning digest"]
    assert "No readings for the real last night yet" in at.warning[0].value
    assert at.date_input(key="night_day").value.isoformat() == "2026-01-06"
    table = at.dataframe[0].value
    assert sorted(table["patient"]) == PATIENTS
    assert list(table.columns) == ["risk", "patient", "name", "peak NEWS2", "peak at",
                                   "worst values", "serious", "minor", "status",
                                   "reviewed"]  # fmt: skip
    # The generator's Patient resources give each row a name and birth date.
    assert table["name"].str.match(r"^\w[\w' -]* · born \d{4}-\d\d-\d\d$").all()
    assert (table["status"] == "consolidated").all()
    assert table["peak at"].str.match(r"^(—|\d\d [A-Z][a-z]{2} \d\d:\d\d)$").all()
    caption = at.caption[0].value
    assert caption.startswith("Mon 05 Jan 22:00 – Tue 06 Jan 07:00 CET")
    assert "scored now (no prepared digest)" in caption  # the sample was never prepared
    __import__("streamlit").cache_data.clear()  # as after the cache's 60 s
    again = app("ana").caption[0].value
    assert "prepared" in again  # the live one was stored for the next viewer
    assert at.selectbox(key="digest_patient").options == list(table["patient"])  # same order
    cards = [m.value for m in at.markdown if m.value.startswith("**icu-")]
    assert [c.split("**")[1] for c in cards] == [table["patient"].iloc[0]]  # the worst first


def test_a_night_without_readings_says_so(dash: Engine) -> None:
    at = app("ana")
    at.date_input(key="night_day").set_value(__import__("datetime").date(2025, 6, 1)).run()
    assert not at.exception
    assert at.info[0].value.startswith("No readings in this night window")


def test_open_patient_goes_to_that_patient(dash: Engine) -> None:
    at = app("ana")
    top = at.dataframe[0].value["patient"].iloc[0]
    at.button(key=f"open-{top}").click().run()
    assert not at.exception
    assert titles(at) == ["Patient"]
    assert at.selectbox(key="pick").value == top
    header = at.subheader[0].value  # the Patient resource's name and birth date, then the id
    assert " · born " in header
    assert header.endswith(f"· id {top}")


def test_marking_a_night_reviewed_is_audited_and_shown_to_the_next_viewer(dash: Engine) -> None:
    at = app("ana")
    at.selectbox(key="digest_patient").select("icu-0002").run()
    at.text_input(key="review-comment-icu-0002").input("seen at the morning round")
    at.button(key="review-submit-icu-0002").click().run()
    assert not at.exception
    actor, action, details = events(dash)[-1]
    assert (actor, action) == ("ana", "review.add")
    assert details["patient"] == "icu-0002"
    assert details["comment"] == "seen at the morning round"
    assert "episode_start_ms" not in details  # the whole night

    other = app("root")  # another clinician's session, later
    other.selectbox(key="digest_patient").select("icu-0002").run()
    notes = [c.value for c in other.caption if c.value.startswith("✓")]
    assert len(notes) == 1
    assert notes[0].startswith("✓ night reviewed by ana")
    assert notes[0].endswith("“seen at the morning round”")
    table = other.dataframe[0].value.set_index("patient")
    assert table.loc["icu-0002", "reviewed"] == "ana"
    assert table.loc["icu-0001", "reviewed"] == "—"
