"""The checking commands keep the CLI's conventions: ``--json`` prints exactly one JSON object
on stdout, people's messages go to stderr, and the exit codes are the README's table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsleep.cli import app
from medsleep.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from medsleep.store.engine import open_store
from medsleep.store.locking import consolidation_lock
from tests.conftest import FIXTURES

runner = CliRunner()
REAL = FIXTURES / "real-labelled"
DEFAULT = Path(__file__).resolve().parents[2] / "medsleep" / "default_policy.toml"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('checks') / 'm.db'}"
    ingest = runner.invoke(app, ["ingest", str(REAL / "mimic2b.ndjson.gz"), "--db", url, "-q"])
    assert ingest.exit_code == EXIT_OK
    return url


def commands(db: str) -> dict[str, list[str]]:
    return {
        "dry run": ["consolidate", "--dry-run", "--db", db, "--until", "2100-01-01"],
        "evaluate": ["evaluate", str(REAL / "mimic2b.ndjson.gz"),
                     "--labels", str(REAL / "mimic2b.labels.json")],
        "policy show": ["policy", "show"],
        "policy diff": ["policy", "diff", str(DEFAULT), str(DEFAULT), "--db", db,
                        "--until", "2100-01-01"],
    }  # fmt: skip


@pytest.mark.parametrize("name", ["dry run", "evaluate", "policy show", "policy diff"])
def test_json_is_one_object_on_stdout(db: str, name: str) -> None:
    result = runner.invoke(app, [*commands(db)[name], "--json"])
    assert result.exit_code == EXIT_OK, result.output
    assert len(result.stdout.splitlines()) == 1
    assert isinstance(json.loads(result.stdout), dict)
    assert result.stderr == ""


@pytest.mark.parametrize("name", ["dry run", "evaluate", "policy diff"])
def test_reports_for_people_go_to_stderr(db: str, name: str) -> None:
    result = runner.invoke(app, commands(db)[name])
    assert result.exit_code == EXIT_OK, result.output
    assert (result.stdout, bool(result.stderr)) == ("", True)


def test_a_dry_run_neither_waits_for_nor_blocks_the_nights_run(db: str) -> None:
    engine = open_store(db)
    with consolidation_lock(engine):
        result = runner.invoke(app, [*commands(db)["dry run"], "--json"])
    engine.dispose()
    assert result.exit_code == EXIT_OK
    assert json.loads(result.stdout)["status"] == "dry-run"


def test_exit_codes(db: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such.toml")
    assert runner.invoke(app, ["policy", "show", "--policy", missing]).exit_code == EXIT_FAILURE
    diff = ["policy", "diff", str(DEFAULT), missing, "--db", db]
    assert runner.invoke(app, diff).exit_code == EXIT_FAILURE  # like consolidate --policy
    labels = ["evaluate", str(REAL / "mimic2b.ndjson.gz"), "--labels", missing]
    assert runner.invoke(app, labels).exit_code == EXIT_USAGE
    assert runner.invoke(app, ["evaluate", str(REAL)]).exit_code == EXIT_USAGE  # no --labels
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    labelled = str(REAL / "mimic2b.labels.json")
    nothing = runner.invoke(app, ["evaluate", str(empty), "--labels", labelled])
    assert nothing.exit_code == EXIT_USAGE  # an input error: no figures made of nothing
    assert "no readings to evaluate" in nothing.output
