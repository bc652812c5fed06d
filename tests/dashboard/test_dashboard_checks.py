"""The compliance page shows the last dry run and the last evaluation recorded on the store
(AppTest, and headless Chromium through Playwright as in ``test_dashboard_browser_flows``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from medsleep.auth.users import add_user
from medsleep.cli import app as cli
from medsleep.consolidate.dry_run import DRY_RUN_ACTION, dry_run
from medsleep.evaluate.run import EVALUATION_ACTION
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.read import checks
from medsleep.store.handle import Store
from medsleep.timefmt import parse_iso_ms
from tests.conftest import FIXTURES
from tests.dashboard.test_dashboard_browser import browser_page, chromium, running_dashboard
from tests.dashboard.test_dashboard_data import consolidated_sample, copy_store

PASSWORD = "compliance-pw"
REAL = FIXTURES / "real-labelled"
__all__ = ["chromium"]


def test_the_read_model_names_the_actions_the_checks_append() -> None:
    assert (checks.DRY_RUN_ACTION, checks.EVALUATION_ACTION) == (DRY_RUN_ACTION, EVALUATION_ACTION)


def record_checks(db: str, archive: Path) -> None:
    """New raw readings, a dry run of them, and an evaluation kept on the store."""
    store = Store.open(db, archive)
    ingest_paths(store.engine, [str(REAL / "mimic2b.ndjson.gz")])
    until = parse_iso_ms("2100-01-01T00:00:00+00:00")
    dry_run(store, load_policy(), until_ms=until, record=True)
    store.close()
    result = CliRunner().invoke(
        cli,
        ["evaluate", str(REAL / "mitdb100.ndjson.gz"), "--labels",
         str(REAL / "mitdb100.labels.json"), "--db", db],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def server(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("browser-checks")
    db = copy_store(consolidated_sample(tmp_path_factory), work / "store")
    record_checks(db, work / "store" / "archive")
    users = work / "users.json"
    add_user(users, "cleo", "compliance", PASSWORD, hasher=PasswordHasher(1, 8, 1))
    log_copy = tmp_path_factory.getbasetemp() / "dashboard-checks-server.log"
    with running_dashboard(work, db, users, log_copy, archive=work / "store" / "archive") as url:
        yield url


@pytest.fixture
def page(server: str, chromium: Path) -> Iterator[Any]:
    with browser_page(chromium) as tab:
        yield tab


@pytest.mark.slow
def test_the_compliance_page_shows_the_last_dry_run_and_evaluation(
    page: Any, server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page.goto(f"{server}/compliance")
    page.get_by_label("User name").fill("cleo")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Before anything is forgotten").wait_for()
    page.get_by_text("Last dry run").wait_for()
    page.get_by_text("Would collapse").wait_for()
    page.get_by_text("Last evaluation").wait_for()
    page.get_by_text("mitdb100.labels.json (ids)", exact=False).wait_for()
    page.locator("[data-testid='stDataFrame']").nth(2).wait_for()  # reasons, patients, methods
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / "compliance-checks.png"), full_page=True)
    assert (folder / "compliance-checks.png").stat().st_size > 10_000
