"""Dashboard users: who may log in, with which role, and the audit trail of their logins.

Sites without a hospital identity provider keep a local users file: JSON, one entry per user
with a role and a salted argon2id password hash (argon2-cffi's PHC string, salt included).
Sites with one (Streamlit's OIDC ``st.login``) list their users here too, without a password,
so that the file still says who gets which role.

>>> from pathlib import Path
>>> users = Path("users.json")
>>> add_user(users, "ana", "clinician", "correct horse battery")  # doctest: +SKIP
>>> authenticate(load_users(users), "ana", "correct horse battery").role  # doctest: +SKIP
'clinician'
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine

from medsleep.audit import append_with_retry
from medsleep.errors import MedsleepError
from medsleep.files import write_atomic

ROLES = ("clinician", "compliance", "admin")
PAGES = (
    "digest", "overview", "patient", "runs", "quarantine", "compliance", "archive", "holds",
)  # fmt: skip
ROLE_PAGES: dict[str, tuple[str, ...]] = {
    "clinician": ("digest", "patient"),
    "compliance": ("overview", "runs", "quarantine", "compliance", "archive", "holds"),
    "admin": PAGES,
}
"""The pages each role sees, landing page first."""

MIN_PASSWORD_LENGTH = 10
LOGIN_ACTION, LOGIN_FAILED_ACTION = "dashboard.login", "dashboard.login_failed"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_FORMAT = 1
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile, 16-byte random salt


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user is unknown, so that an unknown name takes as long as
    a wrong password."""
    return _hasher.hash("medsleep: no such user")


class UserFileError(MedsleepError):
    """The users file cannot be read or written, or is malformed."""


class UserError(MedsleepError):
    """A user name, role or password is not acceptable, or the user exists already."""


@dataclass(frozen=True)
class User:
    """One dashboard user; ``password_hash`` is None for identity-provider-only users."""

    name: str
    role: str
    password_hash: str | None = None

    @property
    def pages(self) -> tuple[str, ...]:
        return ROLE_PAGES[self.role]


@dataclass(frozen=True)
class SessionUser:
    """What a dashboard session keeps about its user: name and role, never the hash."""

    name: str
    role: str

    @property
    def pages(self) -> tuple[str, ...]:
        return ROLE_PAGES[self.role]

    @classmethod
    def of(cls, user: User) -> SessionUser:
        return cls(user.name, user.role)


def recheck_session(users: dict[str, User], session: SessionUser) -> SessionUser | None:
    """The session's user as the users file says now: None once they were removed; their
    current role when it was changed (a demotion takes effect on the next page run)."""
    user = users.get(session.name)
    return None if user is None else SessionUser.of(user)


def load_users(path: Path) -> dict[str, User]:
    """The users in ``path`` by name; an empty dict when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UserFileError(f"cannot read users file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
        entries = data["users"]
        users = {
            str(name): User(str(name), str(entry["role"]), entry.get("password_hash"))
            for name, entry in entries.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserFileError(f"users file {path} is malformed: {exc}") from exc
    for user in users.values():
        if user.role not in ROLES:
            raise UserFileError(f"users file {path}: {user.name} has unknown role {user.role!r}")
    return users


def save_users(path: Path, users: dict[str, User]) -> None:
    """Write ``users`` to ``path`` atomically, readable by its owner only (it holds hashes)."""
    body: dict[str, Any] = {
        "format": _FORMAT,
        "users": {
            u.name: {"role": u.role, "password_hash": u.password_hash}
            for u in sorted(users.values(), key=lambda u: u.name)
        },
    }
    try:
        write_atomic(path, (json.dumps(body, indent=2) + "\n").encode())
    except OSError as exc:
        raise UserFileError(f"cannot write users file {path}: {exc.strerror}") from exc


def add_user(
    path: Path,
    name: str,
    role: str,
    password: str | None,
    *,
    replace: bool = False,
    hasher: PasswordHasher = _hasher,
) -> User:
    """Add (or with ``replace``, change) a user; ``password`` None means identity-provider
    sign-in only. Raises UserError for a bad name, role or password, or an existing user.
    ``hasher`` is for tests that need cheap hashes; the hash records its own parameters."""
    if not _NAME.match(name):
        raise UserError(
            f"user name {name!r} must start with a letter or digit and use only letters, "
            "digits and . _ @ + - (at most 128)"
        )
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    users = load_users(path)
    if name in users and not replace:
        raise UserError(f"user {name} exists already (use --replace to change it)")
    user = User(name, role, hasher.hash(password) if password is not None else None)
    users[name] = user
    save_users(path, users)
    return user


def remove_user(path: Path, name: str) -> None:
    """Remove a user; raises UserError when there is none of that name."""
    users = load_users(path)
    if users.pop(name, None) is None:
        raise UserError(f"no user {name}")
    save_users(path, users)


def authenticate(users: dict[str, User], name: str, password: str) -> User | None:
    """The user when ``password`` is theirs, else None (unknown, wrong, or no password set)."""
    user = users.get(name)
    stored = user.password_hash if user is not None else None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    return user if stored is not None else None


def record_login(
    engine: Engine,
    *,
    name: str,
    ok: bool,
    method: str,
    now_ms: int,
    reason: str = "",
) -> int:
    """Append a ``dashboard.login`` or ``dashboard.login_failed`` event; returns its seq.

    ``name`` is what was typed or what the identity provider said (cut to 128 characters).
    Retries when a concurrent writer took the same seq (the audit chain's primary key).
    """
    details: dict[str, Any] = {"method": method}
    if reason:
        details["reason"] = reason
    action = LOGIN_ACTION if ok else LOGIN_FAILED_ACTION
    return append_with_retry(engine, actor=name[:128], action=action, details=details, at_ms=now_ms)
