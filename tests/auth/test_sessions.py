"""Signed dashboard session tokens: they round-trip, expire, and refuse forgery."""

from __future__ import annotations

import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from medsleep.auth.sessions import read_session, session_key, sign_session

KEY = b"k" * 32


def test_a_token_names_its_user_until_it_expires() -> None:
    token = sign_session("ana", KEY, expires_ms=1_000)
    assert read_session(token, KEY, now_ms=999) == "ana"
    assert read_session(token, KEY, now_ms=1_000) is None


def test_a_token_signed_with_another_key_or_changed_is_refused() -> None:
    token = sign_session("ana", KEY, expires_ms=10**15)
    assert read_session(token, b"x" * 32, now_ms=0) is None
    forged = (
        sign_session("root", b"x" * 32, expires_ms=10**15).split(".")[0] + "." + token.split(".")[1]
    )
    assert read_session(forged, KEY, now_ms=0) is None
    for broken in ("", ".", "abc", token + "0", token.replace(".", "")):
        assert read_session(broken, KEY, now_ms=0) is None


@given(
    name=st.text(min_size=1, max_size=60).filter(lambda n: "\n" not in n),
    expires=st.integers(1, 2**62),
)
def test_any_name_round_trips(name: str, expires: int) -> None:
    assert read_session(sign_session(name, KEY, expires_ms=expires), KEY, now_ms=0) == name


def test_the_key_is_made_once_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "users.json.session-key"
    key = session_key(path)
    assert len(key) == 32
    assert session_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
