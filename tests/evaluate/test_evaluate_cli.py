"""``medsleep evaluate``: a scratch store, medsleep and the three peers, the benchmark's figures.

The development set (``fixtures/real-labelled/``) gives exactly the figures of
``benchmarks/quality.py --cases real``: both run ``medsleep.evaluate``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsleep.cli import app
from medsleep.cli.common import EXIT_OK, EXIT_USAGE
from medsleep.evaluate.labels import Windows, load_labels
from medsleep.policy import load_policy
from tests.conftest import FIXTURES, SAMPLE

runner = CliRunner()
REAL = FIXTURES / "real-labelled"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def evaluate_json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["evaluate", *args, "--json"])
    assert result.exit_code == EXIT_OK, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


def scratch_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("medsleep-evaluate-*")}


@pytest.mark.parametrize("case", ["mitdb100", "mimic2a", "mimic2b", "ucr135"])
def test_evaluate_gives_the_quality_benchmarks_figures(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A temporary folder of this test's own: another process's scratch stores (a benchmark
    # running beside the tests) come and go in the shared one.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    quality = __import__("quality")
    expected = quality.real_case(case, load_policy(), "local")
    before = scratch_folders()
    report = evaluate_json(
        str(REAL / f"{case}.ndjson.gz"), "--labels", str(REAL / f"{case}.labels.json")
    )
    assert scratch_folders() == before  # the scratch store is gone
    got = report["methods"]
    assert isinstance(got, list)
    assert [m["method"] for m in got] == [row["method"] for row in expected]
    for ours, theirs in zip(got, expected, strict=True):
        assert ours["setting"] == theirs["setting"]
        assert ours["compression"] == pytest.approx(theirs["compression"], abs=1e-4)
        assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-4)
        assert (ours["labelled"], ours["labelled_kept"]) == (
            theirs["labelled"],
            theirs["labelled_kept"],
        )
    sys.modules.pop("quality", None)


def test_evaluate_scores_the_generators_windows() -> None:
    report = evaluate_json(str(SAMPLE), "--labels", str(SAMPLE / "labels.csv"))
    assert report["labels_kind"] == "windows"
    methods = {m["method"]: m for m in report["methods"]}  # type: ignore[union-attr]
    assert set(methods) == {
        "medsleep",
        "hourly downsampling",
        "swinging door",
        "NEWS2/critical rules",
    }
    ours = methods["medsleep"]
    assert ours["event_recall"] == 1.0
    assert ours["windows"] == ours["windows_caught"] == 8
    assert set(ours["by_kind"]) == {"desaturation", "fever", "hypotension", "tachycardia"}
    assert methods["hourly downsampling"]["event_recall"] == 0.0
    human = runner.invoke(app, ["evaluate", str(SAMPLE), "--labels", str(SAMPLE / "labels.csv")])
    assert human.exit_code == EXIT_OK
    assert "swinging door" in human.stderr


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("labels.json", '{"ids": []}'),
        ("labels.json", "not json"),
        ("labels.csv", "patient,code\np1,8867-4\n"),
        ("labels.csv", "event,patient,code,start,end\nx,p1,8867-4,yesterday,today\n"),
    ],
)
def test_a_labels_file_of_neither_format_is_a_usage_error(
    tmp_path: Path, name: str, text: str
) -> None:
    labels = tmp_path / name
    labels.write_text(text)
    result = runner.invoke(app, ["evaluate", str(SAMPLE), "--labels", str(labels)])
    assert result.exit_code == EXIT_USAGE
    assert "--labels" in result.output


def test_window_codes_stay_text(tmp_path: Path) -> None:
    # An MDC code is all digits: it must still match the reading's code, a string.
    path = tmp_path / "labels.csv"
    path.write_text(
        "event,patient,code,start,end\nspike,p1,147842,2026-01-05T00:00:00Z,2026-01-05T00:10:00Z\n"
    )
    labels = load_labels(path)
    assert isinstance(labels, Windows)
    assert labels.events["code"].tolist() == ["147842"]
    assert labels.events["end_ms"].tolist() == [labels.events["start_ms"][0] + 600_000]
