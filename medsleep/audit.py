"""The append-only, hash-chained audit log.

Each event's hash covers a canonical JSON form of (seq, time, actor, action, details) and the
previous event's hash: sha256 when unkeyed, HMAC-SHA256 when a key kept outside the database
is bound to the engine (``keyed_engine``). Editing, deleting or inserting a row anywhere
breaks the chain from that row on, which ``verify_chain`` reports; with the key, an event
appended with a correctly computed sha256 is caught too, and a chain head anchored outside
the database (``append_anchor``, ``read_anchors``) catches the newest events cut off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, LargeBinary, cast, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from medsleep.errors import AuditChainBrokenError, InputError
from medsleep.store.tables import AUDIT_EVENT
from medsleep.timefmt import iso

if TYPE_CHECKING:
    from medsleep.store.models import AuditEvent

GENESIS = "0" * 64
AUDIT_LOCK_KEY = 0x6D656473_61756474  # "medsaudt": serialises appends on PostgreSQL
AUDIT_KEY_OPTION = "medsleep_audit_key"  # engine execution option holding the HMAC key
_table = AUDIT_EVENT
APPEND_ATTEMPTS = 8  # a busy night: the ingest, the run, an export and logins all appending
T = TypeVar("T")
_TEXT = ("actor", "action", "details_json", "prev_hash", "hash", "key_id")


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    events: int
    broken_at: int | None = None
    problem: str = ""
    keyed: int = 0  # events whose HMAC was checked with the key
    unchecked: int = 0  # keyed events whose HMAC could not be checked (no key given)


def key_id(key: bytes) -> str:
    """A short public name for a key (stored with each keyed event; reveals nothing)."""
    return "k-" + hashlib.sha256(b"medsleep audit key id\0" + key).hexdigest()[:16]


AUDIT_KEY_ENV, AUDIT_KEY_FILE_ENV = "MEDSLEEP_AUDIT_KEY", "MEDSLEEP_AUDIT_KEY_FILE"
MIN_KEY_BYTES = 16


def audit_key_file(path: Path) -> bytes:
    """The HMAC key kept in ``path`` (at least 16 bytes, surrounding whitespace ignored)."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise InputError(f"cannot read audit key file {path}: {exc.strerror}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"audit key in {path} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def audit_key_from(environ: Mapping[str, str]) -> bytes | None:
    """The audit HMAC key, kept outside the database: the file named by
    MEDSLEEP_AUDIT_KEY_FILE, or the key itself in MEDSLEEP_AUDIT_KEY; None (unkeyed) when
    neither is set. Every edge (CLI, server, dashboard) passes its own environment in, so
    they all key the events they append alike."""
    path = environ.get(AUDIT_KEY_FILE_ENV)
    if path:
        return audit_key_file(Path(path))
    value = environ.get(AUDIT_KEY_ENV)
    if not value:
        return None
    if len(value.encode()) < MIN_KEY_BYTES:
        raise InputError(f"{AUDIT_KEY_ENV} is shorter than {MIN_KEY_BYTES} bytes")
    return value.encode()


def keyed_engine(engine: Engine, key: bytes | None) -> Engine:
    """``engine`` whose connections append HMAC-keyed audit events (unchanged for None)."""
    return engine if key is None else engine.execution_options(**{AUDIT_KEY_OPTION: key})


def canonical(seq: int, at_ms: int, actor: str, action: str, details_json: str) -> bytes:
    body = {"seq": seq, "at_ms": at_ms, "actor": actor, "action": action, "details": details_json}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(
    prev_hash: str,
    seq: int,
    at_ms: int,
    actor: str,
    action: str,
    details: str,
    key: bytes | None = None,
) -> str:
    message = prev_hash.encode() + canonical(seq, at_ms, actor, action, details)
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def append_event(
    conn: Connection, *, actor: str, action: str, details: dict[str, Any], at_ms: int
) -> int:
    """Append one event inside the caller's transaction and return its seq.

    On PostgreSQL appenders take turns on a transaction-scoped advisory lock (two transactions
    would otherwise read the same last ``seq``); SQLite callers already hold the write lock,
    since they write before they append. The primary key on ``seq`` remains the backstop: two
    writers can collide, never fork the chain.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    key = conn.get_execution_options().get(AUDIT_KEY_OPTION)
    last = conn.execute(
        select(_table.c.seq, _table.c.hash).order_by(_table.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    details_json = json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
    conn.execute(
        insert(_table).values(
            seq=seq,
            at_ms=at_ms,
            actor=actor,
            action=action,
            details_json=details_json,
            prev_hash=prev,
            hash=chain_hash(prev, seq, at_ms, actor, action, details_json, key),
            key_id=None if key is None else key_id(key),
        )
    )
    return int(seq)


def audited_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` (which appends to the audit chain) in its own transaction, again on the new
    chain head when a concurrent appender took our ``seq`` (its primary key): the transaction
    rolled back whole, so trying again changes nothing twice."""
    for attempt in range(APPEND_ATTEMPTS):
        try:
            with engine.begin() as conn:
                return work(conn)
        except IntegrityError:
            if attempt == APPEND_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


def append_with_retry(
    engine: Engine, *, actor: str, action: str, details: dict[str, Any], at_ms: int
) -> int:
    """Append one event in its own transaction (see :func:`audited_transaction`)."""
    return audited_transaction(
        engine,
        lambda conn: append_event(conn, actor=actor, action=action, details=details, at_ms=at_ms),
    )


def chain_head(conn: Connection) -> tuple[int, str] | None:
    """(seq, hash) of the newest event, or None for an empty log."""
    last = conn.execute(
        select(_table.c.seq, _table.c.hash).order_by(_table.c.seq.desc()).limit(1)
    ).first()
    return None if last is None else (int(last[0]), str(last[1]))


def iter_events(conn: Connection, since_ms: int | None = None) -> Iterator[AuditEvent]:
    from medsleep.store.models import AuditEvent  # the model, only where events are read

    query = select(_table).order_by(_table.c.seq)
    if since_ms is not None:
        query = query.where(_table.c.at_ms >= since_ms)
    for row in conn.execute(query):
        yield AuditEvent.model_validate(row._mapping)


class _Unreadable(Exception):
    """A row that cannot be read as written (wrong type, NULL, invalid UTF-8)."""


def _raw_rows(conn: Connection) -> Iterator[tuple[Any, ...]]:
    # SQLite keeps whatever a tamperer writes (text in an integer column, invalid UTF-8):
    # text columns come back as bytes and are decoded here, row by row, so that a bad row
    # is named instead of failing the whole walk.
    # The storage class of each text column tells a blob written in place of text apart.
    if conn.dialect.name != "sqlite":
        columns = [_table.c.seq, _table.c.at_ms, *(_table.c[name] for name in _TEXT)]
        yield from conn.execute(select(*columns).order_by(_table.c.seq))
        return
    texts = [cast(_table.c[name], LargeBinary) for name in _TEXT]
    kinds = [func.typeof(_table.c[name]) for name in _TEXT]
    query = select(_table.c.seq, _table.c.at_ms, *texts, *kinds).order_by(_table.c.seq)
    for row in conn.execute(query):
        values = list(row[: 2 + len(_TEXT)])
        for index, kind in enumerate(row[2 + len(_TEXT) :]):
            if kind == "blob":
                values[2 + index] = _Blob()
        yield tuple(values)


class _Blob:
    """A blob found where text was written."""

    def __repr__(self) -> str:
        return "<blob>"


def _decode_row(row: tuple[Any, ...]) -> tuple[int, int, str, str, str, str, str, str | None]:
    seq, at_ms, *texts = row
    for name, value in (("seq", seq), ("at_ms", at_ms)):
        if type(value) is not int:
            raise _Unreadable(f"{name} {value!r} is not an integer")
    actor, action, details, prev, digest = (
        _text(name, value) for name, value in zip(_TEXT[:5], texts[:5], strict=True)
    )
    kid = None if texts[5] is None else _text("key_id", texts[5])
    return seq, at_ms, actor, action, details, prev, digest, kid


def _text(name: str, value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Unreadable(f"{name} is not valid UTF-8") from exc
    if not isinstance(value, str):
        raise _Unreadable(f"{name} {value!r} is not text")
    return value


def verify_chain(
    conn: Connection,
    head: tuple[int, str] | None = None,
    *,
    key: bytes | None = None,
    heads: Iterable[tuple[int, str]] = (),
) -> ChainStatus:
    """Walk the chain from the first event; report the first event that does not verify.

    ``head``/``heads`` are (seq, hash) pairs recorded earlier (an export manifest's
    ``auditChainHead``, the anchor file): the chain must still hold those events unchanged,
    which catches the newest events cut off. With ``key``, every keyed event's HMAC is
    checked, and an unkeyed event after a keyed one is a break (it was forged without the
    key). Without a key, keyed events' links are followed but their HMACs are ``unchecked``.
    """
    expected_heads = dict(heads)
    if head is not None:
        expected_heads[head[0]] = head[1]
    kid = None if key is None else key_id(key)
    prev, expected_seq, count, keyed, unchecked = GENESIS, 1, 0, 0, 0
    seen_keyed = False

    def broken(at: int, problem: str) -> ChainStatus:
        return ChainStatus(False, count, at, problem, keyed, unchecked)

    for row in _raw_rows(conn):
        count += 1
        try:
            seq, at_ms, actor, action, details, prev_hash, digest, event_kid = _decode_row(row)
        except _Unreadable as exc:
            return broken(expected_seq, f"row cannot be read as written: {exc}")
        if seq != expected_seq:
            return broken(expected_seq, f"event {expected_seq} is missing")
        if prev_hash != prev:
            return broken(seq, "previous-hash link does not match")
        if event_kid is None:
            if seen_keyed and key is not None:
                return broken(seq, "unkeyed event after keyed ones (appended without the key)")
            recomputed = chain_hash(prev, seq, at_ms, actor, action, details)
        elif key is None:
            seen_keyed, unchecked, recomputed = True, unchecked + 1, digest
        elif event_kid != kid:
            return broken(seq, f"keyed with another key ({event_kid})")
        else:
            seen_keyed, keyed = True, keyed + 1
            recomputed = chain_hash(prev, seq, at_ms, actor, action, details, key)
        if not hmac.compare_digest(recomputed, digest):
            return broken(seq, "content does not match its hash")
        if seq in expected_heads and digest != expected_heads[seq]:
            return broken(seq, "differs from the recorded chain head")
        prev, expected_seq = digest, expected_seq + 1
    if expected_heads and expected_seq <= max(expected_heads):
        return broken(expected_seq, f"chain ends before recorded head {max(expected_heads)}")
    if key is not None and not seen_keyed and count:
        return broken(1, "no event is keyed with this key (the whole chain is unkeyed)")
    return ChainStatus(True, count, keyed=keyed, unchecked=unchecked)


def count_events(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(_table)).scalar_one())


# --------------------------------------------------------------------------- chain head anchors
# Anyone who can write the database can cut off its newest events and leave a valid, shorter
# chain. After each command that appended events, the CLI writes the head (seq, hash) as one
# JSON line to an anchor file (or a syslog line); ``verify_chain(heads=...)`` then requires the
# chain to still hold every anchored event. With the key, each line carries an HMAC of the
# head, so a forged anchor line is caught too.

ANCHOR_PREFIX = "medsleep audit head "


def _head_mac(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"medsleep audit head {seq}:{digest}".encode(), hashlib.sha256).hexdigest()


def anchor_record(head: tuple[int, str], key: bytes | None, now_ms: int) -> dict[str, Any]:
    """The anchor line for a chain head: ``{"at", "seq", "hash", "key_id", "hmac"}``."""
    seq, digest = head
    return {
        "at": iso(now_ms),
        "seq": seq,
        "hash": digest,
        "key_id": None if key is None else key_id(key),
        "hmac": None if key is None else _head_mac(key, seq, digest),
    }


def anchor_line(record: dict[str, Any]) -> str:
    return ANCHOR_PREFIX + json.dumps(record, sort_keys=True, separators=(",", ":"))


def append_anchor(path: Path, record: dict[str, Any]) -> None:
    """Append one anchor line and fsync it (an anchor that can vanish in a crash is none)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(anchor_line(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_anchors(path: Path, key: bytes | None) -> list[tuple[int, str]]:
    """The (seq, hash) heads of an anchor file (lines from syslog work too).

    With ``key``, every line must carry a valid HMAC of its head (AuditChainBrokenError
    otherwise); without, lines are taken as written.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read audit anchors {path}: {exc}") from exc
    heads: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        _, marker, body = line.partition(ANCHOR_PREFIX)
        if not marker:
            continue  # other syslog traffic
        try:
            record = json.loads(body)
            seq, digest = int(record["seq"]), str(record["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditChainBrokenError(f"anchor line {number} cannot be read: {exc}") from exc
        if key is not None:
            mac = record.get("hmac")
            if not isinstance(mac, str) or not hmac.compare_digest(
                mac, _head_mac(key, seq, digest)
            ):
                raise AuditChainBrokenError(
                    f"anchor line {number} (head {seq}) does not carry a valid HMAC for this key"
                )
        heads.append((seq, digest))
    return heads
