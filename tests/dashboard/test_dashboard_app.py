"""Every dashboard page through Streamlit's AppTest: the login gate, roles, patient selection,
charts and tables, empty stores, and OIDC sign-in (SQLite; the views are tested on both
backends in test_dashboard_views)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from argon2 import PasswordHasher
from sqlalchemy import Engine, select, update
from streamlit.testing.v1 import AppTest

from dashboard.ui_common import time_range
from medsleep import read
from medsleep.audit import iter_events
from medsleep.auth.users import PAGES, ROLE_PAGES, SessionUser, add_user, load_users
from medsleep.ingest import ingest_paths
from medsleep.store.engine import open_store
from medsleep.store.models import AuditEvent, Reading
from tests.dashboard.test_dashboard_data import PATIENTS, consolidated_sample, copy_store
from tests.helpers import observation

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGE_FILES = {name: f"app_pages/{name}.py" for name in PAGES}
TITLES = {
    "digest": "Morning digest",
    "overview": "Overview",
    "patient": "Patient",
    "runs": "Consolidation runs",
    "quarantine": "Quarantine",
    "compliance": "Compliance",
    "archive": "Collapsed stretches",
    "holds": "Legal holds",
}
PASSWORDS = {"ana": "clinician-pw-1", "cleo": "compliance-pw", "root": "admin-password"}
ROLES = {"ana": "clinician", "cleo": "compliance", "root": "admin"}
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # cheap hashes for tests


@pytest.fixture(scope="module")
def users_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.json"
    for name, role in ROLES.items():
        add_user(path, name, role, PASSWORDS[name], hasher=FAST)
    add_user(path, "dr.sso@hospital.example", "clinician", None)
    return path


@pytest.fixture
def dash(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    users_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Engine]:
    """A copy of the consolidated sample, users, and the settings the app reads."""
    url = copy_store(consolidated_sample(tmp_path_factory), tmp_path / "store")
    users = tmp_path / "users.json"
    shutil.copy(users_template, users)
    _settings(monkeypatch, url, users)
    engine = open_store(url)
    yield engine
    engine.dispose()


def _settings(monkeypatch: pytest.MonkeyPatch, url: str, users: Path) -> None:
    monkeypatch.setenv("MEDSLEEP_DB", url)
    monkeypatch.setenv("MEDSLEEP_USERS", str(users))
    monkeypatch.setenv("MEDSLEEP_DASHBOARD_TZ", "Europe/Zurich")
    monkeypatch.delenv("MEDSLEEP_POLICY", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()


def app(user: str | None = None) -> AppTest:
    """The app, logged in as ``user`` (set in session state, as the login form does)."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    if user is not None:
        users = load_users(Path(os.environ["MEDSLEEP_USERS"]))
        at.session_state["user"] = SessionUser.of(users[user])
    return at.run()


def login(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def events(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    with engine.connect() as conn:
        return [(e.actor, e.action, json.loads(e.details_json)) for e in iter_events(conn)]


def charts(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def no_data_shown(at: AppTest) -> bool:
    return not (at.get("vega_lite_chart") or at.dataframe or at.metric)


def test_nothing_but_the_login_form_before_login(dash: Engine) -> None:
    at = app()
    assert not at.exception
    assert titles(at) == ["medsleep"]
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert no_data_shown(at)
    assert not at.sidebar.button  # no logout, no navigation
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page(PAGE_FILES["patient"])


def test_a_wrong_password_is_refused_and_audited(dash: Engine) -> None:
    at = login(app(), "ana", "not-her-password")
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert no_data_shown(at)
    assert "user" not in at.session_state
    assert events(dash)[-1] == (
        "ana",
        "dashboard.login_failed",
        {"method": "password", "reason": "unknown user or wrong password"},
    )


def test_login_opens_the_landing_page_of_the_role_and_is_audited(dash: Engine) -> None:
    at = login(app(), "ana", PASSWORDS["ana"])
    assert not at.exception
    assert titles(at) == ["Morning digest"]
    assert "**ana** (clinician)" in at.sidebar.caption[0].value
    assert events(dash)[-1] == ("ana", "dashboard.login", {"method": "password"})
    at.sidebar.button(key="logout").click().run()
    assert titles(at) == ["medsleep"]
    assert no_data_shown(at)


def test_repeated_failures_lock_the_name_for_a_while(dash: Engine) -> None:
    at = app()
    for _ in range(5):
        at = login(at, "cleo", "guess-guess")
    at = login(at, "cleo", PASSWORDS["cleo"])
    assert at.error[0].value.startswith("Too many failed attempts")
    assert "user" not in at.session_state
    assert [a for _, a, _ in events(dash)][-6:] == ["dashboard.login_failed"] * 6


@pytest.mark.parametrize("user", sorted(ROLES))
def test_each_role_sees_only_its_pages(dash: Engine, user: str) -> None:
    at = app(user)
    allowed = ROLE_PAGES[ROLES[user]]
    assert titles(at) == [TITLES[allowed[0]]]  # the landing page
    for page in PAGES:
        if page in allowed:
            at.switch_page(PAGE_FILES[page]).run()
            assert not at.exception, page
            assert titles(at) == [TITLES[page]]
        else:
            with pytest.raises(ValueError, match="navigation page"):
                at.switch_page(PAGE_FILES[page])


def test_a_page_run_directly_still_checks_the_role(dash: Engine) -> None:
    at = AppTest.from_file(str(APP.parent / "app_pages" / "runs.py"), default_timeout=60)
    at.session_state["user"] = SessionUser.of(load_users(Path(os.environ["MEDSLEEP_USERS"]))["ana"])
    at.run()
    assert [e.value for e in at.error] == ["The clinician role does not include this page."]
    assert no_data_shown(at)


def test_patient_page_draws_every_vital_with_units_and_says_why(dash: Engine) -> None:
    at = app("ana")
    at.switch_page(PAGE_FILES["patient"]).run()
    at.selectbox(key="pick").select("icu-0002").run()
    assert not at.exception
    specs = charts(at)
    chart_titles = [s["title"] for s in specs]
    assert chart_titles[0] == "NEWS2 aggregate"
    for title in ("Respiratory rate (/min)", "SpO2 (%)", "Systolic BP (mmHg)",
                  "Heart rate (/min)", "Body temperature (°C)", "Potassium (mmol/L)"):  # fmt: skip
        assert title in chart_titles
    for spec in specs:
        x = spec["layer"][0]["encoding"]["x"]
        assert x["title"] == "time (Europe/Zurich)"
        assert x["scale"]["type"] == "utc"
    hr = specs[chart_titles.index("Heart rate (/min)")]
    marks = [layer["mark"]["type"] for layer in hr["layer"]]
    assert marks[:3] == ["rect", "rule", "point"]  # summary band, its mean, retained readings
    # ... and the artifact lane when the night had artifacts (a spike by rate of change)
    assert [layer["data"]["name"] for layer in hr["layer"][3:]] in ([], ["artifacts"])
    tips = {t["field"] for t in hr["layer"][2]["encoding"]["tooltip"]}
    assert {"why", "t_ms_utc", "t_ms_local", "value", "kind"} <= tips
    table = at.dataframe[0].value
    assert list(table.columns) == ["time", "vital", "value", "unit", "kept because", "why",
                                   "run", "reading", "UTC"]  # fmt: skip
    assert "mm[Hg]" not in set(table["unit"])  # units as people write them
    assert "mmHg" in set(table["unit"])
    with dash.connect() as conn:
        rows = conn.execute(
            select(Reading.__table__.c.id, Reading.__table__.c.effective_ms).where(  # type: ignore[attr-defined]
                Reading.__table__.c.patient == "icu-0002",  # type: ignore[attr-defined]
                Reading.__table__.c.state == "retained",  # type: ignore[attr-defined]
            )
        ).all()
    # The page shows the default 24 h ending at the patient's newest data (a summary's bucket
    # end at midnight); a reading kept raw as too sparse at the first minute lies just before.
    span = read.patient_span(dash, "icu-0002")
    assert span is not None
    since, _ = time_range(span, "24 h")
    kept = [i for i, t in rows if t >= since]
    assert sorted(table["reading"]) == sorted(kept)
    assert table["why"].str.len().gt(0).all()
    assert table["time"].str.endswith(("CET", "CEST")).all()
    assert table["kept because"].notna().all()  # every kind in words, "sparse" too


def test_patient_search_and_time_range(dash: Engine) -> None:
    at = app("root")
    at.switch_page(PAGE_FILES["patient"]).run()
    at.text_input(key="patient_search").input("0003").run()
    assert at.selectbox(key="pick").options == ["icu-0003"]
    whole = at.metric[0].value
    at.segmented_control(key="range").set_value("12 h").run()
    assert not at.exception
    assert int(at.metric[0].value.replace(",", "")) < int(whole.replace(",", ""))
    at.text_input(key="patient_search").input("nobody").run()
    assert at.info[0].value == "No patient id contains 'nobody'."


def test_overview_counts_and_charts(dash: Engine) -> None:
    at = app("cleo")
    assert titles(at) == ["Overview"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Patients monitored"] == "3"
    assert metrics["Quarantined inputs"] == "0"
    assert int(metrics["Readings collapsed"].replace(",", "")) > 0
    assert {"Rules", "Detectors", "Context", "Artifacts"} <= set(metrics)
    assert len(at.get("vega_lite_chart")) == 2
    assert list(at.dataframe[0].value["status"]) == ["committed"]


def test_runs_page_details_a_run(dash: Engine) -> None:
    at = app("cleo")
    at.switch_page(PAGE_FILES["runs"]).run()
    assert "Run 1: committed" in [s.value for s in at.subheader]
    frames = [d.value for d in at.dataframe]
    files = next(f for f in frames if "sha256" in f.columns)
    assert sorted(files["patient"]) == PATIENTS
    audit = next(f for f in frames if "action" in f.columns)
    assert list(audit["action"]) == ["consolidate.started", "consolidate.committed"]
    assert at.json  # the policy used


def test_quarantine_page_lists_rejected_input(dash: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps(observation("fine")) + "\n{broken\n")
    ingest_paths(dash, [str(bad)])
    at = app("cleo")
    at.switch_page(PAGE_FILES["quarantine"]).run()
    assert at.metric[0].value == "1"
    table = at.dataframe[0].value
    assert list(table.columns) == ["id", "at", "source", "position", "error", "batch_id"]
    assert table["source"].iloc[0].endswith("bad.ndjson")
    assert "{broken" in at.code[0].value


def test_compliance_reports_an_intact_then_a_broken_chain(dash: Engine) -> None:
    at = login(app(), "cleo", PASSWORDS["cleo"])
    at.switch_page(PAGE_FILES["compliance"]).run()
    assert at.success[0].value.startswith("Verified: all")
    logins = at.dataframe[0].value
    assert list(logins["action"]) == ["dashboard.login"]
    with dash.begin() as conn:
        conn.execute(update(AUDIT).where(AUDIT.c.seq == 2).values(actor="someone else"))
    at.button(key="verify").click().run()
    assert at.error[0].value == "Broken at entry 2: content does not match its hash."


def test_an_empty_store_says_what_to_run(
    tmp_path: Path, users_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch, f"sqlite:///{tmp_path / 'empty.db'}", users_template)
    at = app("root")
    expected = {
        "digest": "No readings yet — run `medsleep ingest",
        "overview": "No readings yet — run `medsleep ingest",
        "patient": "No readings yet — run `medsleep ingest",
        "runs": "No consolidation runs yet — run `medsleep consolidate`",
        "compliance": "The audit log is empty",
    }
    for page, text in expected.items():
        at.switch_page(PAGE_FILES[page]).run()
        assert not at.exception, page
        assert at.info[0].value.startswith(text), page
        assert not at.get("vega_lite_chart"), page
    at.switch_page(PAGE_FILES["quarantine"]).run()
    assert at.success[0].value.startswith("Nothing quarantined")


def test_a_store_with_readings_but_no_run_is_scored_provisionally(
    tmp_path: Path, users_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'raw.db'}"
    engine = open_store(url)
    path = tmp_path / "one.ndjson"
    path.write_text(json.dumps(observation("one", when="2026-01-05T02:00:00Z")) + "\n")
    ingest_paths(engine, [str(path)])
    engine.dispose()
    _settings(monkeypatch, url, users_template)
    at = app("ana")
    assert not at.exception  # the digest scores what is not consolidated yet, and says so
    assert list(at.dataframe[0].value["status"]) == ["provisional: not consolidated yet"]
    at.switch_page(PAGE_FILES["patient"]).run()
    assert at.selectbox(key="pick").value == "p1"
    assert len(at.get("vega_lite_chart")) == 1  # raw readings only: one vital, no NEWS2 range


OIDC = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "test-secret",
        "client_id": "medsleep",
        "client_secret": "secret",
        "server_metadata_url": "https://idp.hospital.example/.well-known/openid-configuration",
    }
}


def oidc_app(user: dict[str, Any]) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets = dict(OIDC)
    at.user = user
    return at.run()


def test_oidc_shows_only_the_identity_provider_button_before_login(dash: Engine) -> None:
    at = oidc_app({"is_logged_in": False})
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.text_input  # no local password form when [auth] is configured
    assert no_data_shown(at)


def test_oidc_user_with_a_role_gets_its_pages_and_is_audited(dash: Engine) -> None:
    at = oidc_app({"is_logged_in": True, "email": "dr.sso@hospital.example", "name": "Dr SSO"})
    assert not at.exception
    assert titles(at) == ["Morning digest"]
    assert events(dash)[-1] == ("dr.sso@hospital.example", "dashboard.login", {"method": "oidc"})


def test_oidc_user_without_a_role_is_refused_and_audited(dash: Engine) -> None:
    at = oidc_app({"is_logged_in": True, "email": "visitor@hospital.example"})
    assert "has no role here" in at.error[0].value
    assert no_data_shown(at)
    actor, action, details = events(dash)[-1]
    assert (actor, action, details["method"]) == (
        "visitor@hospital.example",
        "dashboard.login_failed",
        "oidc",
    )


def test_a_patient_can_be_linked_to_by_id(dash: Engine) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["user"] = SessionUser.of(load_users(Path(os.environ["MEDSLEEP_USERS"]))["ana"])
    at.run()
    at.query_params["patient"] = "icu-0003"
    at.switch_page(PAGE_FILES["patient"]).run()
    assert at.selectbox(key="pick").value == "icu-0003"
    at.selectbox(key="pick").select("icu-0001").run()
    assert at.query_params["patient"] == "icu-0003"  # the link stays; the page adds no ids


def test_a_store_that_cannot_be_opened_is_an_error_not_a_traceback(
    tmp_path: Path, users_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch, f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}", users_template)
    at = app()
    assert not at.exception
    assert at.error[0].value.startswith("Cannot open the store: cannot open database")
    assert not at.text_input  # no login form either


def test_a_broken_policy_is_an_error_not_a_traceback(
    dash: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("[consolidation\n")
    monkeypatch.setenv("MEDSLEEP_POLICY", str(bad))
    monkeypatch.delenv("MEDSLEEP_DASHBOARD_TZ")
    at = app("ana")
    assert not at.exception
    assert at.error[0].value.startswith("Cannot load the policy:")


def test_a_keyed_dashboard_appends_events_that_verify_with_the_key(
    dash: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit key in the dashboard's environment keys its events like the CLI's."""
    from medsleep.audit import verify_chain

    key = "dashboard-audit-key-0123456789"
    monkeypatch.setenv("MEDSLEEP_AUDIT_KEY", key)
    st.cache_resource.clear()
    at = login(app(), "ana", PASSWORDS["ana"])
    assert not at.exception
    assert events(dash)[-1][1] == "dashboard.login"
    with dash.connect() as conn:
        keyed = verify_chain(conn, key=key.encode())
        wrong = verify_chain(conn, key=b"another-key-0123456789")
    assert keyed.ok, keyed
    assert not wrong.ok
