"""The CLI as a scheduler sees it: exit codes, one JSON object, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsleep.cli import app
from tests.conftest import SPEC_EXAMPLES
from tests.helpers import observation, write_ndjson

runner = CliRunner()


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_ingest_json_report_balances(sqlite_url: str) -> None:
    code, out, _ = run("ingest", str(SPEC_EXAMPLES), "--db", sqlite_url, "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) >= {
        "resources",
        "readings",
        "stored",
        "duplicates",
        "skipped",
        "quarantined",
        "seconds",
    }
    assert report["resources"] == 64
    assert report["resources"] == (
        report["stored"] + report["duplicates"] + report["skipped"] + report["quarantined"]
    )


def test_quarantine_gives_exit_3_and_is_listed(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text(json.dumps(observation("a")) + "\n{broken\n")
    code, out, _ = run("ingest", str(path), "--db", sqlite_url, "--json")
    assert code == 3
    assert json.loads(out)["quarantined"] == 1
    code, out, _ = run("quarantine", "list", "--db", sqlite_url, "--json")
    assert code == 0
    entry = json.loads(out.splitlines()[0])
    assert entry["position"] == "line 2"
    assert "invalid JSON" in entry["error"]


def test_usage_errors_exit_2(sqlite_url: str, tmp_path: Path) -> None:
    assert run("ingest", "--db", sqlite_url)[0] == 2
    assert run("ingest", str(tmp_path), "--db", sqlite_url, "--fhir-version", "R9")[0] == 2
    assert run("ingest", str(tmp_path), "--db", sqlite_url, "--default-tz", "Mars/Olympus")[0] == 2


def _medsleep(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsleep", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_unreachable_store_is_one_line_exit_1(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "x.ndjson", [observation("a")])
    done = _medsleep("ingest", str(path), "--db", "postgresql://nobody@127.0.0.1:9/none")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("medsleep: error:")
    assert "Traceback" not in done.stderr


def test_missing_input_is_exit_2_without_traceback(tmp_path: Path) -> None:
    done = _medsleep("ingest", str(tmp_path / "nope.ndjson"), "--db", f"sqlite:///{tmp_path}/d.db")
    assert done.returncode == 2
    assert "no such file" in done.stderr
    assert "Traceback" not in done.stderr


def test_db_from_environment(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "x.ndjson", [observation("a")])
    db = tmp_path / "env.db"
    done = _medsleep("ingest", str(path), "--json", env={"MEDSLEEP_DB": f"sqlite:///{db}"})
    assert done.returncode == 0, done.stderr
    assert db.exists()


def test_query_readings_csv_and_jsonl(tmp_path: Path, sqlite_url: str) -> None:
    path = write_ndjson(
        tmp_path / "x.ndjson",
        [
            observation("a", patient="p1", value=70),
            observation("b", patient="p2", value=80),
            observation("c", patient="p1", value=75, when="2026-01-06T10:00:00Z"),
        ],
    )
    run("ingest", str(path), "--db", sqlite_url)
    code, out, _ = run("query", "readings", "--db", sqlite_url, "--patient", "p1")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("id,patient,code,effective,value,unit,state")
    assert len(lines) == 3
    code, out, _ = run(
        "query",
        "readings",
        "--db",
        sqlite_url,
        "--format",
        "jsonl",
        "--since",
        "2026-01-06",
        "--state",
        "raw",
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["patient"], r["value"], r["effective"]) for r in rows] == [
        ("p1", 75.0, "2026-01-06T10:00:00Z")
    ]


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["ingest", "--help"],
        ["quarantine", "list", "--help"],
        ["query", "readings", "--help"],
        ["db", "upgrade", "--help"],
    ):
        code, out, _ = run(*args)
        assert code == 0, args
        assert "Usage" in out, args


def test_ingest_loads_no_detector_table_or_migration_stack(tmp_path: Path) -> None:
    """``medsleep ingest`` pays for what it uses: no PyOD, scikit-learn, pandas, pyarrow,
    NumPy, Alembic (a new store is created from the models, see store.schema), fhir_core
    (fhir.resources: --strict only), multiprocessing (--workers, or inputs of 16 MiB or more),
    SQLModel or SQLAlchemy's ORM (the library's tables are Core, ``store.core_tables``) or, on
    SQLite, SQLAlchemy's PostgreSQL dialect."""
    source = write_ndjson(tmp_path / "in.ndjson", [observation()])
    probe = (
        "import sys\nfrom medsleep.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit as done:\n    code = done.code\n"
        "heavy = ('pyod', 'sklearn', 'pandas', 'pyarrow', 'numpy', 'scipy', 'alembic',\n"
        "         'fhir_core', 'multiprocessing', 'sqlmodel')\n"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & set(heavy)),\n"
        "      'sqlalchemy.dialects.postgresql' in sys.modules, 'sqlalchemy.orm' in sys.modules)\n"
    )
    db = f"sqlite:///{tmp_path / 'm.db'}"
    for _ in range(2):  # a new store, then an existing one
        done = subprocess.run(
            [sys.executable, "-c", probe, "ingest", str(source), "--db", db, "--quiet", "--json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert done.stdout.strip().splitlines()[-1] == "0 [] False False"


@pytest.mark.parametrize(
    ("modules", "why"),
    [
        ("medsleep.cli", "the CLI loads the store only when a command opens it"),
        ("medsleep.ingest.parse_stream", "parse workers carry only what parsing needs"),
    ],
)
def test_these_load_no_sql_stack(modules: str, why: str) -> None:
    """``medsleep --help``, a usage error and every parse worker's imports stay clear of
    SQLAlchemy, SQLModel and pydantic (~0.7 s of imports on this project's machines)."""
    probe = (
        f"import sys, {modules}\n"
        "sql = ('sqlalchemy', 'sqlmodel', 'pydantic', 'alembic')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sql)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", why


def test_the_console_entry_leaves_the_heap_to_the_exit(tmp_path: Path) -> None:
    """``main`` freezes the collector's objects once the command is done (shutdown would
    otherwise walk them all), and the command's output and exit code are unchanged."""
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: sys.stderr.write(f'frozen={gc.get_freeze_count() > 0}'))\n"
        "from medsleep.cli import main\nmain(sys.argv[1:])\n"
    )
    source = write_ndjson(tmp_path / "in.ndjson", [observation()])
    db = f"sqlite:///{tmp_path / 'm.db'}"
    done = subprocess.run(
        [sys.executable, "-c", probe, "ingest", str(source), "--db", db, "--quiet", "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0
    assert json.loads(done.stdout)["stored"] == 1
    assert done.stderr.endswith("frozen=True")


def test_ingest_picks_parse_workers_by_input_size_unless_told(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medsleep.ingest as ingest_module
    from medsleep.ingest import parse_stream

    seen: list[int] = []
    real = ingest_module.ingest_stream

    def spy(engine: Any, stream: parse_stream.ParseStream, *args: Any, **kwargs: Any) -> Any:
        seen.append(stream.workers)
        return real(engine, stream, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "ingest_stream", spy)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    path = write_ndjson(tmp_path / "in.ndjson", [observation(f"o{i}") for i in range(50)])
    monkeypatch.setattr(parse_stream, "AUTO_WORKERS_BYTES", path.stat().st_size + 1)
    assert run("ingest", str(path), "--db", sqlite_url, "--quiet")[0] == 0
    monkeypatch.setattr(parse_stream, "AUTO_WORKERS_BYTES", path.stat().st_size)
    assert run("ingest", str(path), "--db", sqlite_url, "--quiet")[0] == 0
    assert run("ingest", str(path), "--db", sqlite_url, "--quiet", "--workers", "0")[0] == 0
    assert seen == [0, 2, 0]
