"""Anchor the audit chain's head outside the database.

Anyone who can write the database can cut off its newest events and leave a valid, shorter
chain. After each command that appended events, the CLI writes the head (seq, hash) as one
JSON line to an anchor file (or a syslog line); ``verify_chain(heads=...)`` then requires the
chain to still hold every anchored event. With the audit key, each line carries an HMAC of
the head, so a forged anchor line is caught too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from medsleep.audit import key_id
from medsleep.errors import AuditChainBrokenError, InputError
from medsleep.timefmt import iso


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
    return "medsleep audit head " + json.dumps(record, sort_keys=True, separators=(",", ":"))


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
        _, marker, body = line.partition("medsleep audit head ")
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
