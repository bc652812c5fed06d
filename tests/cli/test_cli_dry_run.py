"""``medsleep consolidate --dry-run``: one JSON report, exit 0, no run, one audit event."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medsleep.cli import app
from medsleep.cli.common import EXIT_OK
from tests.conftest import SAMPLE

runner = CliRunner()


def test_dry_run_reports_and_leaves_no_run(tmp_path: Path) -> None:
    db, archive = f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path / "archive")
    assert runner.invoke(app, ["ingest", str(SAMPLE), "--db", db, "--quiet"]).exit_code == 0
    args = ["consolidate", "--db", db, "--archive", archive, "--until", "2027-01-01"]
    result = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert result.exit_code == EXIT_OK, result.output
    report = json.loads(result.stdout)
    assert (report["status"], report["dry_run"], report["run_id"]) == ("dry-run", True, None)
    assert report["readings_in"] == report["retained"] + report["collapsed"]
    assert sum(p["readings_in"] for p in report["patients"]) == report["readings_in"]
    assert report["by_reason"]["rule:news2-critical"] > 0
    assert not Path(archive).exists()
    assert runner.invoke(app, ["runs", "--db", db, "--json"]).stdout == ""
    shown = runner.invoke(app, ["audit", "show", "--db", db, "--json"]).stdout.splitlines()
    assert [json.loads(line)["action"] for line in shown].count("consolidate.dry-run") == 1

    human = runner.invoke(app, [*args, "--dry-run"])
    assert human.exit_code == EXIT_OK
    assert "dry run (nothing changed)" in human.stderr
    assert "icu-0001" in human.stderr
    real = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert {k: real[k] for k in ("retained", "collapsed", "summaries")} == {
        k: report[k] for k in ("retained", "collapsed", "summaries")
    }
