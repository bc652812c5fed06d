"""The dashboard in a real browser: ``medsleep dashboard`` serves a consolidated sample, headless
Chromium (the system package) logs in, opens the top patient of the morning digest, hovers a
retained reading to see why it was kept, reads the "why" table and saves a screenshot.

Skips when /usr/bin/chromium is missing, unless MEDSLEEP_REQUIRE_BROWSER=1 (CI), where that
is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from medsleep.auth.users import add_user
from tests.dashboard.test_dashboard_data import consolidated_sample, copy_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE_BROWSER = os.environ.get("MEDSLEEP_REQUIRE_BROWSER") == "1"
PASSWORD = "browser-test-pw"
WAIT_MS = 60_000  # a cold Streamlit start on a busy 2-core machine is slow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if REQUIRE_BROWSER:
            pytest.fail(f"{CHROMIUM} not found but MEDSLEEP_REQUIRE_BROWSER=1")
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium): browser test skipped")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"medsleep dashboard exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"medsleep dashboard did not come up:\n{log.read_text()}")


@contextmanager
def running_dashboard(
    work: Path, db: str, users: Path, log_copy: Path, archive: Path | None = None
) -> Iterator[str]:
    """``medsleep dashboard`` on a free port over ``db``, stopped (its own process group,
    nothing else) on exit; its log is copied to ``log_copy``."""
    port = _free_port()
    log = work / "server.log"
    env = {**os.environ, "MEDSLEEP_DEBUG": "1", "HOME": str(work)}
    if archive is not None:
        env["MEDSLEEP_ARCHIVE"] = str(archive)
    command = [
        sys.executable, "-m", "medsleep", "dashboard", "--db", db, "--users", str(users),
        "--port", str(port), "--tz", "Europe/Zurich",
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, log)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        shutil.copy(log, log_copy)


@contextmanager
def browser_page(chromium: Path) -> Iterator[Any]:
    """A fresh headless Chromium tab, 1400 x 1000, with the slow-machine timeout."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            tab.set_default_timeout(WAIT_MS)
            yield tab
        finally:
            browser.close()


@pytest.fixture(scope="module")
def dashboard_url(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``medsleep dashboard`` on a free port over a copy of the consolidated sample."""
    work = tmp_path_factory.mktemp("browser")
    db = copy_store(consolidated_sample(tmp_path_factory), work / "store")
    users = work / "users.json"
    add_user(users, "ana", "clinician", PASSWORD, hasher=PasswordHasher(1, 8, 1))
    log_copy = tmp_path_factory.getbasetemp() / "dashboard-server.log"
    with running_dashboard(work, db, users, log_copy) as url:
        yield url


def test_clinician_logs_in_opens_a_patient_and_sees_why(
    dashboard_url: str, chromium: Path, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(dashboard_url)
            page.get_by_label("User name").fill("ana")
            page.get_by_label("Password", exact=True).fill("not the password")
            page.get_by_role("button", name="Log in").click()
            page.get_by_text("Wrong user name or password.").wait_for()
            assert page.locator("[data-testid='stVegaLiteChart']").count() == 0

            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("heading", name="Morning digest").wait_for()
            page.get_by_role("button", name="Open patient").first.click()
            page.get_by_role("heading", name="Retained readings and why").wait_for()
            assert page.url.endswith("/patient")  # no patient id in the URL (access logs)

            charts = page.locator("[data-testid='stVegaLiteChart']")
            charts.nth(1).locator("svg").wait_for()
            assert charts.count() >= 6  # NEWS2 and every vital
            point = charts.locator("g.mark-symbol.role-mark path").first  # a retained reading
            point.scroll_into_view_if_needed()
            point.hover(force=True)
            tooltip = page.locator("#vg-tooltip-element")
            tooltip.wait_for()
            text = tooltip.text_content() or ""
            assert "why" in text
            assert "UTC" in text

            # A slot's band (summaries or hot envelope): its count and range as ready text.
            band = charts.nth(1).locator("g.mark-rect.role-mark path").first
            band.scroll_into_view_if_needed()
            band.hover(force=True)
            page.get_by_text("min–max, mean").first.wait_for()
            text = tooltip.text_content() or ""
            assert "readings" in text
            assert "UTC" in text

            table = page.locator("[data-testid='stDataFrame']").first
            table.scroll_into_view_if_needed()
            table.locator("[role=columnheader]").first.wait_for(state="attached")  # a11y grid
            headers = table.locator("[role=columnheader]").all_text_contents()
            assert headers[:6] == ["time", "vital", "value", "unit", "kept because", "why"]
            cells = table.locator("[role=gridcell]").all_text_contents()
            assert any(c.startswith(("rule ", "context", "detector", "artifact")) for c in cells)

            shot = tmp_path / "patient.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
