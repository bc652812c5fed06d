"""Check the archive against its records: every recorded file present with its sha256 and row
count, and every file on disk that nothing records named (``medsleep archive verify``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from medsleep.archive.files import iter_archive_files, verify_archive_file
from medsleep.errors import ArchiveError
from medsleep.store.handle import Store
from medsleep.store.tables import ARCHIVE_FILE, ArchiveState

_archive = ARCHIVE_FILE


@dataclass(frozen=True)
class FileCheck:
    name: str
    ok: bool
    problem: str = ""


def verify_archive(store: Store) -> list[FileCheck]:
    """Check every recorded archive file; report files on disk that nothing records."""
    engine, archive_root = store.engine, store.archive_root
    with engine.connect() as conn:
        records = conn.execute(
            select(_archive.c.name, _archive.c.sha256, _archive.c.rows).where(
                _archive.c.state != ArchiveState.PURGED
            )
        ).all()
    checks = []
    for name, sha256, rows in records:
        try:
            verify_archive_file(archive_root, name, sha256, rows=rows)
            checks.append(FileCheck(name, True))
        except ArchiveError as exc:
            checks.append(FileCheck(name, False, str(exc)))
    recorded = {name for name, _, _ in records}
    for name in iter_archive_files(archive_root):
        if name not in recorded:
            checks.append(FileCheck(name, True, "not recorded (left by an interrupted run)"))
    return checks
