"""``medsleep dashboard`` and ``medsleep users``: the command they run, clean refusals, and docs
that name every option, setting, role and page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from medsleep.auth.users import ROLES
from medsleep.cli import app
from medsleep.cli.dashboard import APP_PATH, DashboardMissingError, streamlit_invocation

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dashboard.md"
runner = CliRunner()


def test_the_invocation_runs_streamlit_on_the_app_with_settings_in_the_environment(
    tmp_path: Path,
) -> None:
    argv, env = streamlit_invocation(
        db="sqlite:///x.db",
        port=8600,
        address="0.0.0.0",
        users=tmp_path / "u.json",
        policy=tmp_path / "p.toml",
        tz="Europe/Zurich",
    )
    assert argv[:4] == [sys.executable, str(APP_PATH.with_name("serve.py")), "run", str(APP_PATH)]
    options = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert options["--server.port"] == "8600"
    assert options["--server.address"] == "0.0.0.0"
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"
    assert env["MEDSLEEP_DB"] == "sqlite:///x.db"
    assert env["MEDSLEEP_USERS"] == str(tmp_path / "u.json")
    assert env["MEDSLEEP_POLICY"] == str(tmp_path / "p.toml")
    assert env["MEDSLEEP_DASHBOARD_TZ"] == "Europe/Zurich"
    assert APP_PATH.is_file()


def test_without_policy_or_zone_the_app_uses_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDSLEEP_POLICY", raising=False)
    monkeypatch.delenv("MEDSLEEP_DASHBOARD_TZ", raising=False)
    _, env = streamlit_invocation(
        db="sqlite:///x.db", port=1, address="127.0.0.1", users=Path("u.json"), policy=None, tz=None
    )
    assert "MEDSLEEP_POLICY" not in env
    assert "MEDSLEEP_DASHBOARD_TZ" not in env
    assert Path(env["MEDSLEEP_USERS"]).is_absolute()  # streamlit may run from elsewhere


def test_a_missing_app_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DashboardMissingError, match="pip install -e"):
        streamlit_invocation(
            db="sqlite:///x.db", port=1, address="127.0.0.1", users=Path("u.json"),
            policy=None, tz=None, app_path=tmp_path / "app.py",
        )  # fmt: skip


def test_an_unknown_time_zone_is_a_usage_error(sqlite_url: str) -> None:
    result = runner.invoke(app, ["dashboard", "--db", sqlite_url, "--tz", "Mars/Olympus"])
    assert result.exit_code == 2
    assert "unknown time zone" in result.output


def test_a_store_that_cannot_be_opened_stops_before_streamlit(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    result = runner.invoke(app, ["dashboard", "--db", missing])
    assert result.exit_code == 1
    assert "medsleep: error: cannot open database" in result.stderr


def _options(*path: str) -> set[str]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {opt for p in command.params for opt in p.opts if opt.startswith("--")} - {"--help"}


@pytest.mark.parametrize(
    "command", [("dashboard",), ("users", "add"), ("users", "list"), ("users", "remove")]
)
def test_docs_name_every_option(command: tuple[str, ...]) -> None:
    docs = DOCS.read_text()
    assert f"medsleep {' '.join(command)}" in docs
    missing = {o for o in _options(*command) if not re.search(rf"(?<![\w-]){o}(?![\w-])", docs)}
    assert not missing, f"docs/dashboard.md does not mention {sorted(missing)}"


def test_docs_name_every_setting_role_and_page() -> None:
    docs = DOCS.read_text()
    settings = ["MEDSLEEP_DB", "MEDSLEEP_USERS", "MEDSLEEP_POLICY", "MEDSLEEP_DASHBOARD_TZ",
                "MEDSLEEP_REQUIRE_BROWSER"]  # fmt: skip
    pages = ["Morning digest", "Overview", "Patient", "Runs", "Quarantine", "Compliance"]
    for word in [*settings, *ROLES, *pages, "dashboard.login", "dashboard.login_failed"]:
        assert word in docs, word


@pytest.mark.parametrize("policy", ["", "missing.toml"])
def test_the_launcher_imports_the_library_before_streamlit_serves(
    policy: str, tmp_path: Path
) -> None:
    """The first session after a restart should not pay the imports (PyOD ~2 s)."""
    probe = (
        "import sys, runpy; serve = runpy.run_path(sys.argv[1]); serve['preload'](); "
        "print(sorted(m for m in ('medsleep.read.patient', 'medsleep.export.night_report', "
        "'pyod', 'streamlit') if m in sys.modules))"
    )
    env = {**os.environ, "MEDSLEEP_POLICY": str(tmp_path / policy)} if policy else None
    done = subprocess.run(
        [sys.executable, "-c", probe, str(APP_PATH.with_name("serve.py"))],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    loaded = ["medsleep.export.night_report", "medsleep.read.patient"]
    # An unreadable policy skips the detectors: the app says what is wrong with it on the page.
    assert done.stdout.strip() == str(loaded if policy else [*loaded, "pyod"])
