"""What was forgotten, provably: for a patient and a period, each archive file behind its
collapsed stretches (run, policy digest, sha256, rows, the span and count of its summaries),
and an audited check of one file against its recorded sha256 and row count."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from medsleep.archive.files import verify_archive_file
from medsleep.archive.verify import FileCheck
from medsleep.audit import append_with_retry
from medsleep.errors import ArchiveError
from medsleep.store.tables import ARCHIVE_FILE, RUN, SUMMARY, SummaryState

VERIFY_ACTION = "archive.verify_file"
STRETCH_COLUMNS = (
    "file", "run_id", "policy_digest", "sha256", "rows", "state", "first_ms", "last_ms",
    "summaries", "readings", "codes",
)  # fmt: skip


def collapsed_stretches(
    engine: Engine, patient: str, since_ms: int | None = None, until_ms: int | None = None
) -> pd.DataFrame:
    """One row per archive file holding ``patient``'s collapsed readings in the period:
    ``STRETCH_COLUMNS``, oldest first. Each active summary names the files of its readings."""
    s, f, r = SUMMARY.c, ARCHIVE_FILE.c, RUN.c
    query = select(
        s.code, s.bucket_start_ms, s.bucket_end_ms, s.n, s.run_id, s.archive_files
    ).where(s.patient == patient, s.state == SummaryState.ACTIVE)
    if since_ms is not None:
        query = query.where(s.bucket_end_ms > since_ms)
    if until_ms is not None:
        query = query.where(s.bucket_start_ms < until_ms)
    with engine.connect() as conn:
        summaries = conn.execute(query).all()
        files = {
            row.name: row
            for row in conn.execute(
                select(f.name, f.run_id, f.sha256, f.rows, f.state, r.policy_digest)
                .join(RUN, r.id == f.run_id)
                .where(f.patient == patient)
            )
        }
    per_file: dict[str, dict[str, object]] = {}
    for code, start, end, n, run_id, names in summaries:
        for name in json.loads(names or "[]"):
            entry = per_file.setdefault(
                name,
                {
                    "first_ms": start,
                    "last_ms": end,
                    "summaries": 0,
                    "readings": 0,
                    "codes": set(),
                    "run_id": run_id,
                },  # fmt: skip
            )
            entry["first_ms"] = min(int(str(entry["first_ms"])), int(start))
            entry["last_ms"] = max(int(str(entry["last_ms"])), int(end))
            entry["summaries"] = int(str(entry["summaries"])) + 1
            entry["readings"] = int(str(entry["readings"])) + int(n)
            codes = entry["codes"]
            assert isinstance(codes, set)
            codes.add(code)
    rows = []
    for name, entry in per_file.items():
        record = files.get(name)
        rows.append(
            {
                "file": name,
                "run_id": int(record.run_id) if record else int(str(entry["run_id"])),
                "policy_digest": record.policy_digest if record else "",
                "sha256": record.sha256 if record else "(not recorded)",
                "rows": int(record.rows) if record else 0,
                "state": record.state if record else "missing",
                "first_ms": entry["first_ms"],
                "last_ms": entry["last_ms"],
                "summaries": entry["summaries"],
                "readings": entry["readings"],
                "codes": ", ".join(sorted(str(c) for c in entry["codes"])),  # type: ignore[attr-defined]
            }
        )
    frame = pd.DataFrame(rows, columns=list(STRETCH_COLUMNS))
    return frame.sort_values(["first_ms", "file"], ignore_index=True)


def verify_file(
    engine: Engine, archive_root: Path, name: str, *, by: str, now_ms: int
) -> FileCheck:
    """Check one archive file against its record (sha256, rows) and audit the outcome."""
    f = ARCHIVE_FILE.c
    with engine.connect() as conn:
        record = conn.execute(select(f.sha256, f.rows).where(f.name == name)).first()
    if record is None:
        check = FileCheck(name, False, f"archive file {name} is not recorded")
    else:
        try:
            verify_archive_file(archive_root, name, record.sha256, rows=record.rows)
            check = FileCheck(name, True)
        except ArchiveError as exc:
            check = FileCheck(name, False, str(exc))
    details = {"file": name, "ok": check.ok} | ({"problem": check.problem} if check.problem else {})
    append_with_retry(engine, actor=by, action=VERIFY_ACTION, details=details, at_ms=now_ms)
    return check
