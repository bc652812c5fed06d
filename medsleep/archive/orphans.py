"""Clean up archive files a killed consolidation left behind (``archive verify --clean``).

A shard writes and verifies its Parquet file before the transaction that records it and
deletes the collapsed readings. Killed in between, the file stays on disk unrecorded while the
readings stay in the hot store: a redundant copy of up to thousands of readings' PHI. Under the
consolidation lock (so no shard is between those two steps) such an orphan is removed only when
every reading in it is still in the hot store, matched by id, resource and time: nothing can
be lost, and a wrong ``--db`` removes nothing. Leftover temporary files of interrupted writes go
too. One audit event lists what was removed and what was kept, and why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select

from medsleep.archive.files import iter_temp_files, read_archive_file
from medsleep.archive.verify import verify_archive
from medsleep.audit import append_event, audited_transaction
from medsleep.errors import ArchiveError
from medsleep.store.bulk import select_in
from medsleep.store.handle import Store
from medsleep.store.locking import consolidation_lock
from medsleep.store.tables import ARCHIVE_FILE

_MATCH = ("id", "resource_key", "effective_ms")


@dataclass
class CleanReport:
    removed: list[str] = field(default_factory=list)  # orphans, every reading still hot
    temp_removed: list[str] = field(default_factory=list)
    kept: list[dict[str, str]] = field(default_factory=list)  # {"name", "why"}
    readings_in_removed: int = 0

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def clean_orphans(store: Store) -> CleanReport:
    """Remove orphan archive files whose readings are all still in the hot store, and
    temporary files of interrupted writes. Raises LockHeldError while a consolidation runs."""
    engine, archive_root = store.engine, store.archive_root
    report = CleanReport()
    with consolidation_lock(engine):
        with engine.connect() as conn:  # recorded after the lock: none can appear meanwhile
            recorded = {name for (name,) in conn.execute(select(ARCHIVE_FILE.c.name))}
        orphans = [
            check.name
            for check in verify_archive(store)
            if check.ok and check.problem and check.name not in recorded
        ]
        for name in orphans:
            why = _why_not_removable(engine, archive_root, name)
            if why:
                report.kept.append({"name": name, "why": why})
                continue
            rows = len(read_archive_file(archive_root, name, columns=["id"]))
            (archive_root / name).unlink()
            report.removed.append(name)
            report.readings_in_removed += rows
        for name in iter_temp_files(archive_root):
            (archive_root / name).unlink()
            report.temp_removed.append(name)
        if report.removed or report.temp_removed or report.kept:
            details = report.as_json()
            audited_transaction(
                engine,
                lambda conn: append_event(
                    conn,
                    actor=store.actor,
                    action="archive.clean",
                    details=details,
                    at_ms=store.now_ms(),
                ),
            )
    return report


def _why_not_removable(engine: Engine, root: Path, name: str) -> str:
    try:
        frame = read_archive_file(root, name, columns=list(_MATCH))
    except ArchiveError as exc:
        return f"unreadable, kept for inspection: {exc}"
    archived = {(int(i), str(k), int(t)) for i, k, t in frame[list(_MATCH)].itertuples(False)}
    with engine.connect() as conn:
        found = select_in(conn, "reading", _MATCH, "id", sorted({i for i, _, _ in archived}))
    hot = {(int(i), str(k), int(t)) for i, k, t in found}
    missing = len(archived - hot)
    if missing:
        return f"{missing} of its {len(archived)} readings are not in the hot store"
    return ""
