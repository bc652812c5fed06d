"""Bearer tokens: stored as digests only, looked up, revoked; and the token commands."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsleep.auth.tokens import (
    TokenError,
    TokenRegistry,
    add_token,
    load_tokens,
    parse_token_list,
    revoke_token,
    token_digest,
)
from medsleep.cli import app

runner = CliRunner()


def test_file_keeps_the_digest_never_the_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "gateway", clock=lambda: 0)
    text = path.read_text()
    assert token not in text
    assert token_digest(token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [loaded] = load_tokens(path)
    assert (loaded.name, loaded.scopes, loaded.created) == (
        "gateway",
        frozenset({"read", "write"}),
        "1970-01-01T00:00:00Z",
    )


def test_lookup_and_scopes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    writer = add_token(path, "writer")
    reader = add_token(path, "reader", ["read"])
    registry = TokenRegistry(path)
    assert len(registry) == 2
    found = registry.lookup(writer)
    assert found is not None
    assert found.allows("write")
    only_read = registry.lookup(reader)
    assert only_read is not None
    assert only_read.allows("read")
    assert not only_read.allows("write")
    assert registry.lookup(writer + "x") is None
    assert registry.lookup("") is None


def test_tokens_are_unique_and_names_checked(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    assert add_token(path, "a") != add_token(path, "b")
    with pytest.raises(TokenError, match="already exists"):
        add_token(path, "a")
    for bad in ("", "has space", "a]b", "x" * 65):
        with pytest.raises(TokenError, match="token name"):
            add_token(path, bad)
    with pytest.raises(TokenError, match="scopes"):
        add_token(path, "c", ["admin"])


def test_registry_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    registry = TokenRegistry(path)
    assert len(registry) == 0  # a missing file: no tokens yet
    token = add_token(path, "late")
    assert registry.lookup(token) is not None
    assert revoke_token(path, "late")
    assert not revoke_token(path, "late")
    assert registry.lookup(token) is None


def test_a_broken_edit_keeps_the_previous_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "kept")
    registry = TokenRegistry(path)
    path.write_text(path.read_text() + "\n[tokens.half\nsha256 = ")
    assert registry.lookup(token) is not None
    with pytest.raises(TokenError, match="cannot read tokens file"):
        TokenRegistry(path)


def test_token_list_from_the_environment() -> None:
    digest = token_digest("msk_secret")
    tokens = parse_token_list(f"gw:{digest}, dash:{digest}:read ,")
    assert [(t.name, sorted(t.scopes)) for t in tokens] == [
        ("gw", ["read", "write"]),
        ("dash", ["read"]),
    ]
    assert TokenRegistry(None, tokens).lookup("msk_secret") is not None
    for bad in ("gw", "gw:abc", f"gw:{digest}:root", f"a b:{digest}"):
        with pytest.raises(TokenError):
            parse_token_list(bad)


def test_token_commands(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "tokens.toml"
    added = runner.invoke(app, ["token", "add", "ward-7", "--tokens", str(path)])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    assert token.startswith("msk_")
    assert "shown only now" in added.stderr
    assert TokenRegistry(path).lookup(token) is not None
    runner.invoke(app, ["token", "add", "dash", "--tokens", str(path), "--scope", "read"])
    listed = runner.invoke(app, ["token", "list", "--tokens", str(path), "--json"])
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["scopes"]) for r in rows] == [
        ("dash", ["read"]),
        ("ward-7", ["read", "write"]),
    ]
    assert token not in listed.stdout
    assert runner.invoke(app, ["token", "revoke", "ward-7", "--tokens", str(path)]).exit_code == 0
    assert TokenRegistry(path).lookup(token) is None


def test_token_add_env_prints_an_entry_and_writes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    added = runner.invoke(app, ["token", "add", "gw", "--env", "--tokens", str(path)])
    assert added.exit_code == 0
    token = added.stdout.strip()
    entry = added.stderr.split("MEDSLEEP_TOKENS: ", 1)[1].strip()
    assert entry == f"gw:{token_digest(token)}:read+write"
    assert not path.exists()
    assert TokenRegistry(None, parse_token_list(entry)).lookup(token) is not None
