"""Each dashboard flow in real headless Chromium (Playwright), screenshots saved under the
test session's base temp folder (``screenshots/``): a deep link through the login, a reload
that keeps the login, the triage digest and a review mark, legal holds, collapsed stretches
with a verify. Skips without Chromium unless MEDSLEEP_REQUIRE_BROWSER=1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from medsleep.auth.users import add_user
from tests.dashboard.test_dashboard_browser import browser_page, chromium, running_dashboard
from tests.dashboard.test_dashboard_data import consolidated_sample, copy_store

PASSWORDS = {"ana": "browser-test-pw", "cleo": "compliance-pw"}
pytestmark = pytest.mark.slow
__all__ = ["chromium"]


@pytest.fixture(scope="module")
def server(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("browser-flows")
    db = copy_store(consolidated_sample(tmp_path_factory), work / "store")
    users = work / "users.json"
    fast = PasswordHasher(1, 8, 1)
    add_user(users, "ana", "clinician", PASSWORDS["ana"], hasher=fast)
    add_user(users, "cleo", "compliance", PASSWORDS["cleo"], hasher=fast)
    log_copy = tmp_path_factory.getbasetemp() / "dashboard-flows-server.log"
    with running_dashboard(work, db, users, log_copy, archive=work / "store" / "archive") as url:
        yield url


@pytest.fixture
def page(server: str, chromium: Path) -> Iterator[Any]:
    with browser_page(chromium) as tab:
        yield tab


def shot(page: Any, factory: pytest.TempPathFactory, name: str) -> Path:
    folder = factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def login(page: Any, name: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[name])
    page.get_by_role("button", name="Log in").click()


def test_a_deep_link_opens_its_patient_through_the_login_and_a_reload_keeps_it(
    page: Any, server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page.goto(f"{server}/patient?patient=icu-0003")
    login(page, "ana")
    page.get_by_role("heading", name="Retained readings and why").wait_for()
    page.locator("[data-testid='stVegaLiteChart'] svg").first.wait_for()
    shot(page, tmp_path_factory, "deep-link-patient")
    picker = page.locator("[data-testid='stSelectbox']").first.inner_html()
    assert "icu-0003" in picker  # the linked patient is the one picked
    assert [c["name"] for c in page.context.cookies() if c["name"] == "medsleep_session"]
    page.reload()
    page.get_by_role("heading", name="Patient").wait_for()
    assert page.get_by_label("User name").count() == 0  # still logged in
    page.get_by_role("button", name="Log out").click()
    page.get_by_label("User name").wait_for()
    for _ in range(100):  # the login page's script clears the cookie once its frame has run
        if not [c for c in page.context.cookies() if c["name"] == "medsleep_session"]:
            break
        page.wait_for_timeout(100)
    page.reload()
    page.get_by_label("User name").wait_for()  # logged out stays logged out


def test_the_digest_triage_list_and_a_review_mark(
    page: Any, server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page.goto(server)
    login(page, "ana")
    page.get_by_role("heading", name="Morning digest").wait_for()
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    page.get_by_text("No readings for the real last night yet").wait_for()
    shot(page, tmp_path_factory, "digest")
    page.get_by_role("button", name="Mark reviewed").first.click()
    body = page.locator("[data-testid='stPopoverBody']")
    body.get_by_label("Comment (optional)").fill("seen on the round")
    body.get_by_role("button", name="Mark reviewed").click()
    page.get_by_text("reviewed by ana").first.wait_for()
    shot(page, tmp_path_factory, "digest-reviewed")


def test_legal_holds_and_collapsed_stretches_for_compliance(
    page: Any, server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page.goto(f"{server}/holds")
    login(page, "cleo")
    page.get_by_role("heading", name="Legal holds").wait_for()
    page.get_by_label("Why (case, request)").fill("case 2026-17")
    page.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="icu-0001").click()
    page.get_by_role("button", name="Add hold").click()
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    shot(page, tmp_path_factory, "holds")
    page.goto(f"{server}/archive")
    page.get_by_role("heading", name="Collapsed stretches").wait_for()
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    page.get_by_role("button", name="Verify this file").click()
    page.get_by_text("sha256 and row count match its record.").wait_for()
    shot(page, tmp_path_factory, "collapsed-stretches")
