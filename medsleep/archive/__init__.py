"""The cold archive: checksummed Parquet files, their index, legal holds, restore, verify, purge."""

from medsleep.archive.files import ArchiveFile, read_archive_file, write_archive_file
from medsleep.archive.holds import add_hold, is_held, list_holds, release_hold
from medsleep.archive.restore import RestoreReport, restore
from medsleep.archive.verify import FileCheck, verify_archive

__all__ = [
    "ArchiveFile",
    "FileCheck",
    "RestoreReport",
    "add_hold",
    "is_held",
    "list_holds",
    "read_archive_file",
    "release_hold",
    "restore",
    "verify_archive",
    "write_archive_file",
]
