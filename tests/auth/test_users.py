"""Dashboard users: the local users file, argon2 hashes, roles, audited logins, the CLI."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from typer.testing import CliRunner

from medsleep.audit import iter_events, verify_chain
from medsleep.auth.users import (
    LOGIN_ACTION,
    LOGIN_FAILED_ACTION,
    PAGES,
    ROLE_PAGES,
    UserError,
    UserFileError,
    add_user,
    authenticate,
    load_users,
    record_login,
    remove_user,
)
from medsleep.cli import app, main

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only
runner = CliRunner()


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return tmp_path / "users.json"


def test_passwords_are_stored_as_salted_argon2id_hashes(users_file: Path) -> None:
    add_user(users_file, "ana", "clinician", PASSWORD)
    add_user(users_file, "ben", "clinician", PASSWORD)
    text = users_file.read_text()
    assert PASSWORD not in text
    hashes = [u.password_hash for u in load_users(users_file).values()]
    # argon2id with RFC 9106's low-memory parameters (64 MiB, 3 passes, 4 lanes)
    assert all(h is not None and h.startswith("$argon2id$v=19$m=65536,t=3,p=4$") for h in hashes)
    assert hashes[0] != hashes[1]  # same password, different salt
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600


def test_authenticate_accepts_only_the_right_password(users_file: Path) -> None:
    add_user(users_file, "ana", "compliance", PASSWORD, hasher=FAST)
    add_user(users_file, "sso@hospital.example", "clinician", None, hasher=FAST)
    users = load_users(users_file)
    user = authenticate(users, "ana", PASSWORD)
    assert user is not None
    assert (user.name, user.role) == ("ana", "compliance")
    assert authenticate(users, "ana", PASSWORD + "!") is None
    assert authenticate(users, "nobody", PASSWORD) is None
    # identity-provider users have no password to guess
    assert authenticate(users, "sso@hospital.example", "") is None


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("ana", "nurse", PASSWORD, "role 'nurse'"),
        ("-ana", "admin", PASSWORD, "user name"),
        ("a b", "admin", PASSWORD, "user name"),
        ("ana", "admin", "short", "at least 10"),
    ],
)
def test_bad_users_are_refused(
    users_file: Path, name: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        add_user(users_file, name, role, password, hasher=FAST)
    assert not users_file.exists()


def test_a_user_is_added_once_then_replaced_or_removed(users_file: Path) -> None:
    add_user(users_file, "ana", "clinician", PASSWORD, hasher=FAST)
    with pytest.raises(UserError, match="exists already"):
        add_user(users_file, "ana", "admin", PASSWORD, hasher=FAST)
    add_user(users_file, "ana", "admin", "another long one", replace=True, hasher=FAST)
    users = load_users(users_file)
    assert users["ana"].role == "admin"
    assert authenticate(users, "ana", PASSWORD) is None
    remove_user(users_file, "ana")
    assert load_users(users_file) == {}
    with pytest.raises(UserError, match="no user ana"):
        remove_user(users_file, "ana")


def test_a_missing_file_has_no_users_and_a_broken_one_is_an_error(users_file: Path) -> None:
    assert load_users(users_file) == {}
    users_file.write_text("{not json")
    with pytest.raises(UserFileError, match="malformed"):
        load_users(users_file)
    users_file.write_text(json.dumps({"users": {"ana": {"role": "root"}}}))
    with pytest.raises(UserFileError, match="unknown role"):
        load_users(users_file)


def test_each_role_sees_only_its_pages() -> None:
    assert ROLE_PAGES["clinician"] == ("digest", "patient")
    assert set(ROLE_PAGES["compliance"]) == {
        "overview", "runs", "quarantine", "compliance", "archive", "holds",
    }  # fmt: skip
    assert ROLE_PAGES["admin"] == PAGES
    assert not set(ROLE_PAGES["clinician"]) & {"runs", "quarantine", "compliance", "archive",
                                                "holds"}  # fmt: skip


def test_logins_and_failures_join_the_audit_chain(engine: Engine) -> None:
    first = record_login(engine, name="ana", ok=True, method="password", now_ms=1_000)
    second = record_login(
        engine, name="x" * 300, ok=False, method="password", now_ms=2_000, reason="wrong"
    )
    assert second == first + 1
    with engine.connect() as conn:
        events = list(iter_events(conn))
        assert verify_chain(conn).ok
    assert [(e.actor, e.action) for e in events] == [
        ("ana", LOGIN_ACTION),
        ("x" * 128, LOGIN_FAILED_ACTION),
    ]
    assert json.loads(events[1].details_json) == {"method": "password", "reason": "wrong"}


def test_cli_adds_a_user_from_stdin_and_lists_it_without_its_hash(users_file: Path) -> None:
    result = runner.invoke(
        app,
        ["users", "add", "ana", "--role", "clinician", "--users", str(users_file),
         "--password-stdin"],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert authenticate(load_users(users_file), "ana", PASSWORD) is not None
    listed = runner.invoke(app, ["users", "list", "--users", str(users_file)])
    assert listed.exit_code == 0
    assert "ana" in listed.stdout
    assert "clinician" in listed.stdout
    assert "argon2" not in listed.stdout


def test_cli_prompts_twice_for_the_password(users_file: Path) -> None:
    result = runner.invoke(
        app,
        ["users", "add", "ben", "--role", "admin", "--users", str(users_file)],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert authenticate(load_users(users_file), "ben", PASSWORD) is not None


def test_cli_adds_identity_provider_users_without_a_password(users_file: Path) -> None:
    args = ["users", "add", "dr.x@hospital.example", "--role", "clinician", "--oidc"]
    result = runner.invoke(app, [*args, "--users", str(users_file)])
    assert result.exit_code == 0, result.output
    assert load_users(users_file)["dr.x@hospital.example"].password_hash is None


def test_cli_refuses_an_unknown_role_as_a_usage_error(users_file: Path) -> None:
    result = runner.invoke(
        app, ["users", "add", "ana", "--role", "nurse", "--users", str(users_file)]
    )
    assert result.exit_code == 2
    assert not users_file.exists()


def test_cli_reports_a_duplicate_user_in_one_line(
    users_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(users_file, "ana", "clinician", PASSWORD, hasher=FAST)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    with pytest.raises(SystemExit) as exit_info:
        main(["users", "add", "ana", "--role", "admin", "--users", str(users_file),
              "--password-stdin"])  # fmt: skip
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "medsleep: error: user ana exists already (use --replace to change it)"
    )
