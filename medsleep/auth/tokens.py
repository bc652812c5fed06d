"""Bearer tokens for the HTTP server, stored as sha256 digests, never as the tokens themselves.

A token is 32 random bytes (``secrets.token_urlsafe``), so a plain sha256 is enough: there is
nothing to brute-force that a slow hash would protect. The tokens file is TOML::

    [tokens.ward-gateway]
    sha256 = "9f2c…"
    scopes = ["read", "write"]
    created = "2026-11-25T23:59:17Z"

``TokenRegistry`` re-reads the file when it changes, so a revoked token stops working without a
restart. Tokens can also come from a ``NAME:SHA256[:SCOPE+SCOPE]`` list (see ``parse_token_list``),
which the command line reads from ``MEDSLEEP_TOKENS``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from medsleep.errors import MedsleepError
from medsleep.files import write_atomic
from medsleep.timefmt import iso, wall_clock_ms

log = logging.getLogger(__name__)
SCOPES = ("read", "write")
TOKEN_PREFIX = "msk_"  # makes a leaked medsleep token easy to recognise (and to grep for)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_HEADER = "# medsleep bearer tokens: the sha256 of each token, never the token itself.\n"


class TokenError(MedsleepError):
    """A tokens file or token list is malformed, or a token name is invalid or taken."""


@dataclass(frozen=True)
class Token:
    """One registered token: who it is for, its digest, what it may do."""

    name: str
    sha256: str
    scopes: frozenset[str] = frozenset(SCOPES)
    created: str = ""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def new_token() -> str:
    """A fresh high-entropy token (shown once, then only its digest is kept)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise TokenError(f"token name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def _check_scopes(scopes: Iterable[str], where: str) -> frozenset[str]:
    found = frozenset(scopes)
    unknown = sorted(found - set(SCOPES))
    if unknown or not found:
        raise TokenError(f"{where}: scopes must be some of {', '.join(SCOPES)}, got {unknown}")
    return found


def _token_from_table(name: str, table: object, where: str) -> Token:
    if not isinstance(table, dict):
        raise TokenError(f"{where}: [tokens.{name}] must be a table")
    digest = table.get("sha256")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise TokenError(f"{where}: tokens.{name}.sha256 must be 64 lower-case hex digits")
    scopes = table.get("scopes", list(SCOPES))
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise TokenError(f"{where}: tokens.{name}.scopes must be a list of strings")
    created = table.get("created", "")
    return Token(
        _check_name(name),
        digest,
        _check_scopes(scopes, f"{where}: tokens.{name}"),
        str(created),
    )


def load_tokens(path: Path) -> list[Token]:
    """The tokens of a tokens file; a missing file has none."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TokenError(f"cannot read tokens file {path}: {exc}") from exc
    tables = data.get("tokens", {})
    if not isinstance(tables, dict):
        raise TokenError(f"{path}: 'tokens' must be a table of tables")
    return [_token_from_table(name, table, str(path)) for name, table in tables.items()]


def _render(tokens: Iterable[Token]) -> str:
    blocks = [_HEADER]
    for token in sorted(tokens, key=lambda t: t.name):
        scopes = ", ".join(f'"{s}"' for s in sorted(token.scopes))
        blocks.append(
            f"\n[tokens.{token.name}]\n"
            f'sha256 = "{token.sha256}"\n'
            f"scopes = [{scopes}]\n"
            f'created = "{token.created}"\n'
        )
    return "".join(blocks)


def _write_tokens(path: Path, tokens: Iterable[Token]) -> None:
    """Replace the file atomically, readable by its owner only."""
    write_atomic(path, _render(tokens).encode())


def add_token(
    path: Path,
    name: str,
    scopes: Iterable[str] = SCOPES,
    *,
    clock: Callable[[], int] = wall_clock_ms,
) -> str:
    """Register a new token under ``name`` in the tokens file; return the token (shown once).

    >>> import tempfile; f = Path(tempfile.mkdtemp()) / "tokens.toml"
    >>> token = add_token(f, "gateway")
    >>> TokenRegistry(f).lookup(token).name
    'gateway'
    """
    existing = load_tokens(path)
    if any(t.name == _check_name(name) for t in existing):
        raise TokenError(f"a token named {name!r} already exists in {path}; revoke it first")
    token = new_token()
    entry = Token(name, token_digest(token), _check_scopes(scopes, "scopes"), iso(clock()))
    _write_tokens(path, [*existing, entry])
    return token


def revoke_token(path: Path, name: str) -> bool:
    """Remove the token named ``name``; False when there was none."""
    existing = load_tokens(path)
    kept = [t for t in existing if t.name != name]
    if len(kept) == len(existing):
        return False
    _write_tokens(path, kept)
    return True


def parse_token_list(text: str) -> list[Token]:
    """Tokens from ``NAME:SHA256[:SCOPE+SCOPE],...`` (e.g. the ``MEDSLEEP_TOKENS`` variable)."""
    tokens: list[Token] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, rest = item.partition(":")
        digest, _, scopes = rest.partition(":")
        if not _DIGEST.match(digest):
            raise TokenError(f"token list entry {name!r}: expected NAME:SHA256[:SCOPE+SCOPE]")
        chosen = scopes.split("+") if scopes else list(SCOPES)
        tokens.append(
            Token(_check_name(name), digest, _check_scopes(chosen, f"token list entry {name!r}"))
        )
    return tokens


class TokenRegistry:
    """Look bearer tokens up by digest; the tokens file is re-read whenever it changes."""

    def __init__(self, path: Path | None = None, extra: Iterable[Token] = ()) -> None:
        self._path = path
        self._extra = list(extra)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_digest: Mapping[str, Token] = {}
        self._reload_if_changed(strict=True)

    def _reload_if_changed(self, strict: bool = False) -> None:
        stamp = (0, 0)
        if self._path is not None:
            try:
                stat = self._path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
            except FileNotFoundError:
                stamp = (-1, -1)
        if stamp == self._stamp:
            return
        with self._lock:
            self._stamp = stamp
            try:
                loaded = load_tokens(self._path) if self._path is not None else []
            except TokenError:
                if strict:
                    raise
                # A half-edited file must not lock everyone out: keep the tokens we had.
                log.exception("tokens file changed but does not load; keeping the previous tokens")
                return
            self._by_digest = {t.sha256: t for t in [*loaded, *self._extra]}

    def __len__(self) -> int:
        self._reload_if_changed()
        return len(self._by_digest)

    def lookup(self, token: str) -> Token | None:
        """The registered token ``token`` is, or None."""
        self._reload_if_changed()
        return self._by_digest.get(token_digest(token))
