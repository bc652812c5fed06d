"""Rerun the kinds of attack of issue 12 against this checkout and print what held.

    .venv/bin/python benchmarks/attacks.py [--kills N] [--json]

Three parts, each through the real CLI on a real SQLite store in a temporary folder:

- bad inputs: each kind of hostile record between good ones, then query, export and
  consolidate. "crashed" is an exit code outside 0/3 or a traceback at any step; "lost" counts
  good records neither stored nor quarantined.
- SIGKILLs: first-use schema creation, an ingest mid-stream, a consolidation at random points
  (then ``archive verify --clean``); each must reopen, lose no reading and leave nothing stuck.
- tamperings: each edit of the audit table a database writer can make, checked with
  ``audit verify --key --anchor`` (and without them, for comparison).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from medsleep.cli import app

runner = CliRunner()
KEY = "attack-rerun-key-0123456789abcdef"


def obs(
    rid: str,
    *,
    value: Any = 72,
    when: str = "2026-01-05T10:00:00Z",
    unit: str = "/min",
    code: str = "8867-4",
) -> bytes:
    return json.dumps(
        {
            "resourceType": "Observation",
            "id": rid,
            "meta": {"versionId": "1"},
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "code": unit},
        }
    ).encode()


def good(prefix: str, n: int = 20) -> list[bytes]:
    return [obs(f"{prefix}{i}", when=f"2026-01-05T10:{i % 60:02d}:00Z") for i in range(n)]


def _deep(kind: str) -> bytes:
    if kind == "object":
        return b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    return obs("deep")[:-1] + b', "extension": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"


def _lines(*parts: bytes | list[bytes], sep: bytes = b"\n") -> bytes:
    out: list[bytes] = []
    for part in parts:
        out.extend(part if isinstance(part, list) else [part])
    return sep.join(out) + sep


# (name, how it is fed: "file" | "stdin" | "folder", builder(tmp) -> (path or bytes), good count)
def bad_inputs() -> list[tuple[str, str, Callable[[Path], Any], int]]:
    g = good
    kinds: list[tuple[str, str, Callable[[Path], Any], int]] = []

    def line_kind(name: str, bad: bytes) -> None:
        kinds.append(
            (name, "file", lambda t, b=bad: _write(t / "in.ndjson", _lines(g("a"), b, g("b"))), 40)
        )

    line_kind("10,000-deep object", _deep("object"))
    line_kind("10,000-deep Observation", _deep("obs"))
    line_kind("time 0001-01-01+14:00", obs("x", when="0001-01-01T00:00:00+14:00"))
    line_kind("time 9999-12-31-14:00", obs("x", when="9999-12-31T23:59:59-14:00"))
    line_kind("time 1899-12-31", obs("x", when="1899-12-31T23:59:59Z"))
    line_kind("time 2200-01-01", obs("x", when="2200-01-01T00:00:00Z"))
    line_kind("year 0000", obs("x", when="0000-01-01T00:00:00Z"))
    line_kind("value 1.7976931348623157e308", obs("x", value=1.7976931348623157e308))
    big = 1.7976931348623157e308
    line_kind("two values 1.79e308", obs("x1", value=big) + b"\n" + obs("x2", value=big))
    line_kind("two values 1e200", obs("x1", value=1e200) + b"\n" + obs("x2", value=-1e200))
    line_kind("value 1e200", obs("x", value=1e200))
    line_kind("value -1e16", obs("x", value=-1e16))
    line_kind("value 1e400 literal", obs("x").replace(b'"value": 72', b'"value": 1e400'))
    line_kind("value NaN literal", obs("x").replace(b'"value": 72', b'"value": NaN'))
    line_kind("[degF] near float max", obs("x", value=1.7e308, unit="[degF]", code="8310-5"))
    line_kind("g 1e16 (kg in range)", obs("x", value=1e16, unit="g", code="29463-7"))
    line_kind("kPa 2e14 (out once converted)", obs("x", value=2e14, unit="kPa", code="8480-6"))
    line_kind("invalid UTF-8", obs("x").replace(b"p1", b"p\xff"))
    line_kind("value as string", obs("x").replace(b'"value": 72', b'"value": "72"'))
    line_kind("value true", obs("x").replace(b'"value": 72', b'"value": true'))
    line_kind("300-digit number", obs("x").replace(b'"value": 72', b'"value": ' + b"9" * 300))
    line_kind("Bundle entry not a list", b'{"resourceType": "Bundle", "entry": 5}')
    line_kind("bare string", b'"hello"')
    line_kind("id of 200 chars", obs("y" * 200))
    line_kind("NUL byte", obs("x").replace(b"final", b"fin\x00al"))
    for name, stream in [
        ("stdin: broken first line", _lines(b"{not json", g("a"), g("b"))),
        ("stdin: BOM", b"\xef\xbb\xbf" + _lines(g("a"), g("b"))),
        ("stdin: CR-only lines", _lines(g("a"), g("b"), sep=b"\r")),
        ("stdin: truncated first line", _lines(b'{"resourceType": "Obs', g("a"), g("b"))),
        ("stdin: deep first line", _lines(_deep("object"), g("a"), g("b"))),
    ]:
        kinds.append((name, "stdin", lambda t, s=stream: s, 40))

    def folder(t: Path, files: dict[str, bytes]) -> Path:
        (t / "in").mkdir(exist_ok=True)
        for fname, data in files.items():
            (t / "in" / fname).write_bytes(data)
        return t / "in"

    whole = gzip.compress(_lines(good("t", 4000)))
    kinds += [
        (
            "folder: corrupt .gz beside good",
            "folder",
            lambda t: folder(
                t, {"a.ndjson.gz": b"\x1f\x8b\x08\x00junk" * 50, "b.ndjson": _lines(g("a"), g("b"))}
            ),
            40,
        ),
        (
            "folder: truncated .gz beside good",
            "folder",
            lambda t: folder(
                t, {"a.ndjson.gz": whole[: len(whole) // 2], "b.ndjson": _lines(g("a"), g("b"))}
            ),
            40,
        ),
        (
            "folder: A.JSON and B.NDJSON.GZ",
            "folder",
            lambda t: folder(
                t,
                {"A.JSON": obs("upper"), "B.NDJSON.GZ": gzip.compress(_lines(g("a"), g("b")[:19]))},
            ),
            40,
        ),
        ("/dev/null", "file", lambda t: Path("/dev/null"), 0),
    ]
    return kinds


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def run_bad_inputs() -> dict[str, Any]:
    rows = []
    for name, how, build, expected in bad_inputs():
        work = Path(tempfile.mkdtemp(prefix="attack-"))
        url = f"sqlite:///{work / 'm.db'}"
        crashed, notes = False, []
        made = build(work)
        if how == "stdin":
            result = runner.invoke(app, ["ingest", "-", "--db", url, "--json"], input=made)
        else:
            result = runner.invoke(app, ["ingest", str(made), "--db", url, "--json"])
        if (
            result.exit_code not in (0, 3)
            or result.exception
            and not isinstance(result.exception, SystemExit)
        ):
            crashed, notes = True, [f"ingest exit {result.exit_code}"]
        stored = 0
        if not crashed:
            report = json.loads(result.stdout)
            stored = report["stored"]
            if (
                report["resources"]
                != report["stored"]
                + report["duplicates"]
                + report["skipped"]
                + report["quarantined"]
            ):
                notes.append("counts do not balance")
        for step in (
            ["query", "readings", "--db", url],
            ["export", "--db", url, "--out", str(work / "x"), "--format", "fhir"],
            [
                "consolidate",
                "--db",
                url,
                "--archive",
                str(work / "a"),
                "--until",
                "2030-01-01",
                "--json",
            ],
        ):
            done = runner.invoke(app, step)
            if done.exit_code not in (0, 3):
                crashed = True
                notes.append(f"{step[0]} exit {done.exit_code}")
        lost = max(0, expected - stored)
        rows.append({"kind": name, "crashed": crashed, "lost": lost, "notes": notes})
        shutil.rmtree(work, ignore_errors=True)
    return {
        "tried": len(rows),
        "crashed": sum(r["crashed"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "failures": [r for r in rows if r["crashed"] or r["lost"] or r["notes"]],
    }


def _medsleep(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "medsleep", *args], **kwargs)


def run_sigkills(kills: int) -> dict[str, Any]:
    from medsleep.store.engine import current_revision, head_revision, open_store
    from medsleep.synth import generate

    rng = random.Random(12)
    out: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="attack-kill-"))
    # 1. first-use schema creation
    survived = 0
    for trial in range(kills):
        url = f"sqlite:///{work / f's{trial}.db'}"
        proc = _medsleep("db", "upgrade", "--db", url, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            engine = open_store(url)
            survived += current_revision(engine) == head_revision()
            engine.dispose()
        except Exception:  # noqa: BLE001  (a failure to open is what is counted)
            pass
    out["schema creation"] = f"{survived}/{kills}"
    # 2. ingest mid-stream, then the same input again: every reading once, the batch closed
    generate(work / "in", patients=4, days=0.25, seed=4)
    data = (work / "in" / "observations.ndjson").read_bytes()
    survived = 0
    for trial in range(kills):
        url = f"sqlite:///{work / f'i{trial}.db'}"
        open_store(url).dispose()
        proc = _medsleep(
            "ingest",
            "-",
            "--db",
            url,
            "--quiet",
            stdin=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        cut = rng.randrange(len(data))
        threading.Thread(target=lambda p=proc, c=cut: _feed(p, data[:c]), daemon=True).start()
        time.sleep(rng.uniform(0.5, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        again = runner.invoke(
            app, ["ingest", str(work / "in" / "observations.ndjson"), "--db", url, "--json"]
        )
        engine = open_store(url)
        with engine.connect() as conn:
            n = conn.exec_driver_sql("SELECT count(*) FROM reading").scalar_one()
            running = conn.exec_driver_sql(
                "SELECT count(*) FROM ingest_batch WHERE status = 'running'"
            ).scalar_one()
        engine.dispose()
        expected = json.loads(again.stdout)["resources"] if again.exit_code == 0 else -1
        survived += again.exit_code == 0 and running == 0 and n >= expected
    out["ingest mid-stream"] = f"{survived}/{kills}"
    # 3. consolidation at random points, then archive verify --clean and a full run
    url = f"sqlite:///{work / 'c.db'}"
    runner.invoke(app, ["ingest", str(work / "in" / "observations.ndjson"), "--db", url])
    with sqlite3.connect(work / "c.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        total = conn.execute("SELECT count(*) FROM reading").fetchone()[0]
    survived, orphans_cleaned = 0, 0
    for trial in range(kills):
        db = work / f"k{trial}.db"
        shutil.copyfile(work / "c.db", db)
        archive = work / f"a{trial}"
        proc = _medsleep(
            "consolidate",
            "--db",
            f"sqlite:///{db}",
            "--archive",
            str(archive),
            "--until",
            "2030-01-01",
            "--quiet",
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        clean = runner.invoke(
            app,
            [
                "archive",
                "verify",
                "--db",
                f"sqlite:///{db}",
                "--archive",
                str(archive),
                "--clean",
                "--json",
            ],
        )
        if clean.exit_code == 0:
            orphans_cleaned += len(json.loads(clean.stdout)["cleaned"]["removed"])
        rerun = runner.invoke(
            app,
            [
                "consolidate",
                "--db",
                f"sqlite:///{db}",
                "--archive",
                str(archive),
                "--until",
                "2030-01-01",
                "--json",
            ],
        )
        report = json.loads(rerun.stdout) if rerun.exit_code == 0 else {}
        with sqlite3.connect(db) as conn:
            hot = conn.execute("SELECT count(*) FROM reading").fetchone()[0]
            archived = conn.execute(
                "SELECT coalesce(sum(rows), 0) FROM archive_file WHERE state = 'active'"
            ).fetchone()[0]
            stuck = conn.execute("SELECT count(*) FROM run WHERE status = 'running'").fetchone()[0]
        survived += bool(report) and hot + archived == total and stuck == 0
    out["consolidation"] = f"{survived}/{kills}"
    out["orphan files cleaned"] = orphans_cleaned
    shutil.rmtree(work, ignore_errors=True)
    return out


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.flush()
    except (BrokenPipeError, OSError):
        pass


TAMPERINGS = [
    ("details changed", "UPDATE audit_event SET details_json = '{\"x\":1}' WHERE seq = 5"),
    ("actor changed", "UPDATE audit_event SET actor = 'mallory' WHERE seq = 5"),
    ("at_ms = 'yesterday'", "UPDATE audit_event SET at_ms = 'yesterday' WHERE seq = 5"),
    ("at_ms + 0.5", "UPDATE audit_event SET at_ms = at_ms + 0.5 WHERE seq = 5"),
    ("seq = 3.5", "UPDATE audit_event SET seq = 3.5 WHERE seq = 3"),
    (
        "invalid UTF-8 details",
        "UPDATE audit_event SET details_json = CAST(X'7B22FF227D' AS TEXT) WHERE seq = 4",
    ),
    ("blob actor", "UPDATE audit_event SET actor = X'6d' WHERE seq = 4"),
    ("middle event deleted", "DELETE FROM audit_event WHERE seq = 4"),
    ("newest events cut", "DELETE FROM audit_event WHERE seq > 6"),
    ("all events deleted", "DELETE FROM audit_event"),
    ("prev_hash rewritten", "UPDATE audit_event SET prev_hash = hash WHERE seq = 6"),
    ("key_id cleared", "UPDATE audit_event SET key_id = NULL WHERE seq = 6"),
    ("key_id changed", "UPDATE audit_event SET key_id = 'k-0000' WHERE seq = 6"),
    ("hash rewritten", "UPDATE audit_event SET hash = printf('%064d', 0) WHERE seq = 8"),
    ("forged append (sha256)", "forge-append"),
    ("forged append (key_id copied)", "forge-append-keyid"),
    ("chain rewritten unkeyed", "rewrite-unkeyed"),
    ("two events swapped", "swap"),
]


def run_tamperings() -> dict[str, Any]:
    from medsleep.audit import GENESIS, chain_hash

    work = Path(tempfile.mkdtemp(prefix="attack-audit-"))
    (work / "key").write_text(KEY)
    env = {"MEDSLEEP_AUDIT_KEY_FILE": str(work / "key"), "MEDSLEEP_AUDIT_ANCHOR": str(work / "a")}
    base = work / "base.db"
    data = work / "in.ndjson"
    for i in range(8):
        data.write_bytes(_lines(good(f"r{i}-", 3)))
        runner.invoke(app, ["ingest", str(data), "--db", f"sqlite:///{base}"], env=env)
    rows = []
    for name, sql in TAMPERINGS:
        db = work / "t.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        with sqlite3.connect(base) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(base, db)
        with sqlite3.connect(db) as conn:
            conn.executescript(
                "CREATE TABLE t2 AS SELECT * FROM audit_event; DROP TABLE "
                "audit_event; ALTER TABLE t2 RENAME TO audit_event;"
            )
            events = conn.execute(
                "SELECT seq, at_ms, actor, action, details_json, prev_hash, "
                "hash, key_id FROM audit_event ORDER BY seq"
            ).fetchall()
            if sql == "forge-append" or sql == "forge-append-keyid":
                seq, prev = events[-1][0] + 1, events[-1][6]
                digest = chain_hash(prev, seq, 1, "cli", "ingest.done", "{}")
                kid = events[-1][7] if sql.endswith("keyid") else None
                conn.execute(
                    "INSERT INTO audit_event VALUES (?,?,?,?,?,?,?,?)",
                    (seq, 1, "cli", "ingest.done", "{}", prev, digest, kid),
                )
            elif sql == "rewrite-unkeyed":
                conn.execute("DELETE FROM audit_event")
                prev = GENESIS
                for seq, at, actor, action, details, _, _, _ in events[:-1]:
                    digest = chain_hash(prev, seq, at, actor, action, details)
                    conn.execute(
                        "INSERT INTO audit_event VALUES (?,?,?,?,?,?,?,NULL)",
                        (seq, at, actor, action, details, prev, digest),
                    )
                    prev = digest
            elif sql == "swap":
                conn.execute("UPDATE audit_event SET seq = -1 WHERE seq = 3")
                conn.execute("UPDATE audit_event SET seq = 3 WHERE seq = 4")
                conn.execute("UPDATE audit_event SET seq = 4 WHERE seq = -1")
            else:
                conn.execute(sql)
        url = f"sqlite:///{db}"
        keyed = runner.invoke(
            app,
            [
                "audit",
                "verify",
                "--db",
                url,
                "--key",
                str(work / "key"),
                "--anchor",
                str(work / "a"),
            ],
        )
        plain = runner.invoke(app, ["audit", "verify", "--db", url])
        rows.append(
            {"tampering": name, "keyed_exit": keyed.exit_code, "unkeyed_exit": plain.exit_code}
        )
    shutil.rmtree(work, ignore_errors=True)
    return {
        "tried": len(rows),
        "detected with --key --anchor (exit 5)": sum(r["keyed_exit"] == 5 for r in rows),
        "detected unkeyed (exit 5)": sum(r["unkeyed_exit"] == 5 for r in rows),
        "other exits": [r for r in rows if r["keyed_exit"] not in (0, 5)],
        "missed with key": [r["tampering"] for r in rows if r["keyed_exit"] != 5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=["inputs", "kills", "audit"])
    args = parser.parse_args()
    os.environ.pop("MEDSLEEP_AUDIT_KEY_FILE", None)
    result: dict[str, Any] = {}
    if args.only in (None, "inputs"):
        result["bad inputs"] = run_bad_inputs()
    if args.only in (None, "kills"):
        result["sigkills survived"] = run_sigkills(args.kills)
    if args.only in (None, "audit"):
        result["audit tamperings"] = run_tamperings()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
