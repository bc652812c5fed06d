"""Signed, expiring dashboard session tokens: a browser reload keeps its login, a removed
user's token stops working (the caller re-checks the users file), a forged or expired one is
refused. The token carries the name only; the role always comes from the users file.

    token = sign_session("ana", key, expires_ms=now + TTL_MS)
    read_session(token, key, now_ms=now)  # "ana", or None
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from medsleep.auth.users import UserFileError

TTL_MS = 12 * 3_600_000
"""How long a session token lasts: one shift."""
COOKIE = "medsleep_session"
_KEY_BYTES = 32


def sign_session(name: str, key: bytes, *, expires_ms: int) -> str:
    body = base64.urlsafe_b64encode(f"{name}\n{expires_ms}".encode()).decode().rstrip("=")
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def read_session(token: str, key: bytes, *, now_ms: int) -> str | None:
    """The user name in a token signed with ``key`` that has not expired, else None."""
    body, _, mac = token.partition(".")
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not mac or not hmac.compare_digest(mac, expected):
        return None
    try:
        name, expires = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split("\n")
        return name if int(expires) > now_ms else None
    except (ValueError, UnicodeDecodeError):
        return None


def session_key(path: Path) -> bytes:
    """The signing key kept in ``path`` (created with 32 random bytes, owner-only, on first
    use). Removing the file logs every browser out."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise UserFileError(f"cannot read session key {path}: {exc}") from exc
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
    except FileExistsError:
        return session_key(path)  # another dashboard process made it first
    except OSError as exc:
        raise UserFileError(f"cannot write session key {path}: {exc.strerror}") from exc
    return key
