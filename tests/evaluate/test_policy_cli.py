"""``medsleep policy show`` (thresholds with their cited sources) and ``policy diff`` (two dry
runs: the readings one policy keeps and the other forgets, by patient and rule)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from medsleep.cli import app
from medsleep.cli.common import EXIT_OK, EXIT_USAGE
from medsleep.evaluate.policy_view import catalogue_sources, catalogue_text
from medsleep.store.engine import open_store
from medsleep.store.tables import AUDIT_EVENT, RUN
from tests.conftest import FIXTURES, SAMPLE

runner = CliRunner()
DEFAULT = Path(__file__).resolve().parents[2] / "medsleep" / "default_policy.toml"
PROPOSED = FIXTURES / "policies" / "proposed.toml"


def show(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["policy", "show", *args, "--json"])
    assert result.exit_code == EXIT_OK, result.output
    view: dict[str, object] = json.loads(result.stdout)
    return view


def by_id(view: dict[str, object]) -> dict[str, dict[str, object]]:
    return {p["id"]: p for p in view["parameters"]}  # type: ignore[index,union-attr]


def test_show_cites_where_each_threshold_comes_from() -> None:
    view = show()
    params = by_id(view)
    assert params["heart_rate"]["sources"] == {
        "bands": "NEWS2",
        "plausible": "medsleep",
        "reference": "HR",
        "max_step": "SVT",
        "max_rate": "SVT",
    }
    assert params["systolic"]["sources"]["max_step"] == "BP"  # type: ignore[index]
    assert "max_step" not in params["potassium"]["sources"]  # type: ignore[operator]
    assert params["systolic"]["sources"]["critical"] == "AHA"  # type: ignore[index]
    assert params["potassium"]["sources"] == {
        "plausible": "medsleep",
        "reference": "LAB",
        "critical": "LAB",
    }
    assert params["hba1c"]["sources"]["reference"] == "ADA"  # type: ignore[index]
    assert {"code": "147842", "system": "urn:iso:std:iso:11073:10101"} in params["heart_rate"][
        "codes"
    ]  # type: ignore[operator]
    legend = view["sources"]
    assert isinstance(legend, dict)
    assert legend["NEWS2"].startswith("Royal College of Physicians")
    assert "Plausible" not in legend["ADA"]  # the header's next paragraph is not ADA's
    used = {tag for p in params.values() for tag in p["sources"].values()}  # type: ignore[attr-defined]
    assert used - {"medsleep", "uncited", "policy"} <= set(legend)


def test_no_threshold_in_the_shipped_catalogue_is_uncited() -> None:
    params = by_id(show())
    uncited = sorted(
        (pid, key) for pid, p in params.items() for key, tag in p["sources"].items()  # type: ignore[attr-defined]
        if tag == "uncited"
    )  # fmt: skip
    assert uncited == []


def test_every_news2_band_in_the_catalogue_is_cited() -> None:
    cited, _ = catalogue_sources(catalogue_text())
    view = by_id(show())
    for pid, p in view.items():
        if p["bands"]:
            assert cited[pid]["bands"] == "NEWS2"


def test_show_marks_what_the_policy_file_changed(tmp_path: Path) -> None:
    policy = tmp_path / "site.toml"
    policy.write_text(
        "[parameters.heart_rate]\nbands = [[45, 3], [130, 0], [inf, 3]]\n"
        '[codes."X-1"]\nname = "Site score"\nunit = "1"\ncritical = [0, 9]\n'
    )
    view = show("--policy", str(policy))
    assert by_id(view)["heart_rate"]["sources"]["bands"] == "policy"  # type: ignore[index]
    assert by_id(view)["spo2"]["sources"]["bands"] == "NEWS2"  # type: ignore[index]
    assert [c["code"] for c in view["policy_codes"]] == ["X-1"]  # type: ignore[union-attr]
    human = runner.invoke(app, ["policy", "show", "--policy", str(policy)])
    assert human.exit_code == EXIT_OK
    assert "<=45.0:3 <=130.0:0 <=inf:3 [policy]" in human.stdout
    assert "[NEWS2] Royal College of Physicians" in human.stdout


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = f"sqlite:///{tmp_path_factory.mktemp('diff') / 'm.db'}"
    assert runner.invoke(app, ["ingest", str(SAMPLE), "--db", db, "--quiet"]).exit_code == 0
    return db


def diff(db: str, a: Path, b: Path) -> dict[str, object]:
    args = ["policy", "diff", str(a), str(b), "--db", db, "--until", "2027-01-01", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_OK, result.output
    out: dict[str, object] = json.loads(result.stdout)
    return out


def counts(db: str) -> tuple[int, int]:
    engine = open_store(db)
    with engine.connect() as conn:
        runs = conn.execute(select(func.count()).select_from(RUN)).scalar_one()
        events = conn.execute(select(func.count()).select_from(AUDIT_EVENT)).scalar_one()
    engine.dispose()
    return int(runs), int(events)


def test_diff_of_a_policy_with_itself_is_empty(sample_db: str) -> None:
    out = diff(sample_db, DEFAULT, DEFAULT)
    assert out["same"] is True
    assert out["patients"] == []


def test_diff_lists_what_each_policy_keeps_and_the_other_forgets(sample_db: str) -> None:
    before = counts(sample_db)
    out = diff(sample_db, DEFAULT, PROPOSED)
    assert counts(sample_db) == before  # two dry runs: not even an audit event
    a, b = out["a"], out["b"]
    assert isinstance(a, dict)
    assert isinstance(b, dict)
    # more context each side (context_readings 3) keeps more; fewer temperature flags forget
    assert b["keeps_only_by_rule"]["context:context"] > 0
    assert a["keeps_only"] >= 1
    patients = out["patients"]
    assert isinstance(patients, list)
    assert sum(len(p["only_b"]) for p in patients) == b["keeps_only"]
    assert sum(len(p["only_a"]) for p in patients) == a["keeps_only"]
    assert b["retained"] - a["retained"] == b["keeps_only"] - a["keeps_only"]
    first = next(p for p in patients if p["only_b"])["only_b"][0]
    assert set(first) == {"id", "code", "effective_ms", "reasons"}
    human = runner.invoke(
        app,
        ["policy", "diff", str(DEFAULT), str(PROPOSED), "--db", sample_db, "--until", "2027-01-01"],
    )
    assert human.exit_code == EXIT_OK, human.output
    assert "forgotten by" in human.stderr


def test_diff_needs_two_policies() -> None:
    assert runner.invoke(app, ["policy", "diff", str(DEFAULT)]).exit_code == EXIT_USAGE
