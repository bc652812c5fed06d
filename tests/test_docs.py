"""The README documents every command and every policy setting (a missing one fails here)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer

from medsleep.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
POLICY = Path(__file__).resolve().parent.parent / "medsleep" / "default_policy.toml"


def _command_paths(group: Any, prefix: str = "medsleep") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            paths.extend(_command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme() -> None:
    commands = _command_paths(typer.main.get_command(app))  # type: ignore[arg-type]
    assert len(commands) > 10
    missing = [c for c in commands if c not in README]
    assert missing == []


def test_every_policy_setting_is_in_the_readme() -> None:
    policy = tomllib.loads(POLICY.read_text())
    keys = [
        f"{section}.{key}"
        for section in ("consolidation", "schedule", "retention")
        for key in policy[section]
    ]
    keys += [
        f"multivariate.{key}" if key == "detector" else f".{key}" for key in policy["multivariate"]
    ]
    per_parameter = {key for table in policy["parameters"].values() for key in table}
    keys += [f".{key}" for key in per_parameter | set(policy["statistical"])]
    keys += ["[parameters.", "[codes.", "[statistical]"]
    missing = [k for k in keys if k not in README]
    assert missing == []


def test_readme_keeps_exactly_two_setup_commands() -> None:
    first_screen = README.split("---", 1)[0]
    commands = [
        line.strip().split()[0:2]
        for line in first_screen.splitlines()
        if line.startswith("    make ")
    ]
    assert commands == [["make", "demo"], ["make", "test"]]


ARCHITECTURE = (Path(__file__).resolve().parent.parent / "docs" / "architecture.md").read_text()
PACKAGE = Path(__file__).resolve().parent.parent / "medsleep"


def test_architecture_names_every_package_and_top_level_module() -> None:
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if not p.name.startswith("__"))
    assert "read" in packages
    assert "policy.py" in modules
    missing = [f"{name}/" for name in packages if f"{name}/" not in ARCHITECTURE]
    missing += [name for name in modules if name not in ARCHITECTURE]
    assert missing == []


def test_architecture_names_every_module_of_every_package() -> None:
    missing = []
    for init in PACKAGE.glob("*/__init__.py"):
        for module in init.parent.glob("*.py"):
            if not module.name.startswith("__") and module.stem not in ARCHITECTURE:
                missing.append(f"{init.parent.name}/{module.name}")
    assert missing == []


def test_no_more_than_eight_modules_directly_under_the_package() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= 8


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: Any) -> None:
    start = README.index("    from pathlib import Path\n    from medsleep.consolidate import")
    end = README.index("report = consolidate(store, load_policy())", start)
    block = README[start : README.index("\n", end)]
    code = "\n".join(line[4:] for line in block.splitlines())
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(code.replace('"fixtures/sample"', repr(str(root / "fixtures" / "sample"))), namespace)
    assert namespace["report"].status == "committed"
    assert namespace["report"].retained > 0
    assert (tmp_path / "medsleep.db").exists()
