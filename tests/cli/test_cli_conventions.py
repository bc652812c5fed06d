"""The command line behaves like the tools people already script: --version and -h, help
that wraps instead of cutting, a quiet end when the reader of a pipe leaves, --db as a plain
path, JSON Lines for lists, and the exit codes of the README's table for every command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from medsleep import __version__
from medsleep.cli import app
from medsleep.cli.common import (
    EXIT_AUDIT,
    EXIT_FAILURE,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_QUARANTINED,
    EXIT_USAGE,
)
from tests.conftest import SAMPLE
from tests.helpers import ndjson_of, observation

runner = CliRunner()
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
MEDSLEEP = [sys.executable, "-m", "medsleep"]


def command_paths() -> list[list[str]]:
    """Every command, as the words that name it (``["hold", "list"]``)."""
    paths: list[list[str]] = []

    def walk(group: object, prefix: list[str]) -> None:
        for name, command in getattr(group, "commands", {}).items():
            if getattr(command, "commands", None):
                walk(command, [*prefix, name])
            else:
                paths.append([*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.output.strip()) == (EXIT_OK, f"medsleep {__version__}")


@pytest.mark.parametrize("words", command_paths(), ids=" ".join)
def test_every_command_has_short_help_that_wraps_and_rejects_unknown_options(
    words: list[str],
) -> None:
    result = runner.invoke(app, [*words, "-h"], env={"COLUMNS": "80"})
    assert result.exit_code == EXIT_OK, result.output
    assert "Usage:" in result.output
    assert "…" not in result.output  # wrapped, never cut short
    wrong = runner.invoke(app, [*words, "--no-such-option"])
    assert wrong.exit_code == EXIT_USAGE


def test_the_readme_exit_code_table_is_the_clis() -> None:
    table = dict(re.findall(r"^\| (\d) \| ([^|]+) \|$", README, flags=re.MULTILINE))
    assert set(table) == {"0", "1", "2", "3", "4", "5"}
    codes = (EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_QUARANTINED, EXIT_LOCKED, EXIT_AUDIT)
    assert codes == (0, 1, 2, 3, 4, 5)
    assert "usage" in table["2"]
    assert "quarantined" in table["3"]


def small_input(tmp_path: Path) -> str:
    path = tmp_path / "in.ndjson"
    path.write_text(ndjson_of([observation("o1"), observation("o2", patient="p2")]))
    return str(path)


def test_db_takes_a_plain_path_as_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    result = runner.invoke(app, ["ingest", small_input(tmp_path), "--db", str(db)])
    assert result.exit_code == EXIT_OK, result.output
    assert db.is_file()
    again = runner.invoke(app, ["runs", "--db", f"sqlite:///{db}", "--json"])
    assert (again.exit_code, again.output) == (EXIT_OK, "")  # no runs: JSON Lines print nothing


def test_lists_print_json_lines_and_nothing_when_empty(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'm.db'}"
    for words in (["hold", "list"], ["runs"], ["quarantine", "list"]):
        result = runner.invoke(app, [*words, "--db", db, "--json"])
        assert (result.exit_code, result.output) == (EXIT_OK, ""), words
    runner.invoke(app, ["hold", "add", "p1", "--reason", "litigation", "--db", db])
    held = runner.invoke(app, ["hold", "list", "--db", db, "--json"])
    assert [line.startswith("{") for line in held.output.splitlines()] == [True]


@pytest.mark.parametrize(
    "words",
    [
        ["restore", "--run", "999"],
        ["restore", "--patient", "nobody"],
        ["export", "--patient", "nobody", "--out", "{tmp}/out"],
        ["query", "readings", "--patient", "nobody"],
        ["query", "summaries", "--patient", "nobody"],
    ],
    ids=" ".join,
)
def test_an_unknown_run_or_patient_is_a_usage_error(tmp_path: Path, words: list[str]) -> None:
    db = f"sqlite:///{tmp_path / 'm.db'}"
    runner.invoke(app, ["ingest", small_input(tmp_path), "--db", db])
    args = [w.replace("{tmp}", str(tmp_path)) for w in words]
    result = runner.invoke(app, [*args, "--db", db])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "in this store" in result.output
    assert not (tmp_path / "out").exists()
    # the same commands with a patient the store holds succeed
    known = [w.replace("nobody", "p2") for w in args if w != "--run" and w != "999"]
    if "--patient" in known:
        assert runner.invoke(app, [*known, "--db", db]).exit_code == EXIT_OK


def test_every_command_and_group_shows_an_example(tmp_path: Path) -> None:
    from medsleep.cli.examples import EXAMPLES

    names = {" ".join(words) for words in command_paths()}
    groups = {" ".join(words[:-1]) for words in command_paths() if len(words) > 1}
    assert set(EXAMPLES) == names | groups  # every command has one, none is stale
    for path in sorted(names | groups):
        result = runner.invoke(app, [*path.split(), "-h"], env={"COLUMNS": "80"})
        examples = result.output.split("Examples:")[-1]
        assert "Examples:" in result.output, path
        assert f"medsleep {path}" in examples, path


def test_command_lists_show_whole_summaries() -> None:
    from medsleep.cli.examples import first_paragraph

    for prefix in [[]] + [[w[0]] for w in command_paths() if len(w) > 1]:
        group = typer.main.get_command(app)
        for word in prefix:
            group = group.commands[word]  # type: ignore[attr-defined]
        result = runner.invoke(app, [*prefix, "-h"], env={"COLUMNS": "80"})
        listed = " ".join(result.output.split("Commands:")[1].split())
        assert "..." not in listed, prefix
        for command in group.commands.values():  # type: ignore[attr-defined]
            assert first_paragraph(command.help) in listed, (prefix, command.name)


def test_an_unreachable_store_is_a_failure(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'm.db'}"
    result = runner.invoke(app, ["runs", "--db", missing])
    assert result.exit_code == EXIT_FAILURE


def test_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'm.db'}"
    env = {**os.environ, "MEDSLEEP_DB": db}
    subprocess.run([*MEDSLEEP, "ingest", str(SAMPLE), "--quiet"], env=env, check=True)
    reader = subprocess.Popen(
        [*MEDSLEEP, "query", "readings", "--format", "csv"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None
    reader.stdout.readline()
    reader.stdout.close()  # what `| head -1` does
    _, stderr = reader.communicate(timeout=120)
    assert (reader.returncode, stderr) == (EXIT_OK, b"")


def test_serve_on_a_port_in_use_is_a_failure_not_quarantine(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*MEDSLEEP, "serve", "--port", str(port), "--db", str(tmp_path / "m.db")],
            env={**os.environ, "MEDSLEEP_TOKENS": "probe:" + "0" * 64},
            capture_output=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert result.returncode == EXIT_FAILURE
    assert b"port in use" in result.stderr
