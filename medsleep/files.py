"""Durable file writes, the one place that does them: a temporary name in the target folder,
fsync, rename, fsync the folder — so a crash leaves either the old file or the new one, never
half of one. Archive files, export files, the users file and the tokens file all go through here.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    """Persist a folder's entries (new or renamed names): a file's own fsync does not cover them.

    Some filesystems cannot fsync a folder (EINVAL): the files themselves are synced, so that is
    not an error. Any other failure raises OSError.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, fsyncing each new entry's parent."""
    created: list[Path] = []
    current = directory
    while not current.exists():
        created.append(current)
        current = current.parent
    directory.mkdir(parents=True, exist_ok=True)
    for new in reversed(created):
        fsync_dir(new.parent)


def temp_file(directory: Path, name: str) -> tuple[BinaryIO, Path]:
    """A new, empty temporary file beside ``directory / name`` (owner-only), open for writing."""
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=TEMP_SUFFIX)
    return os.fdopen(fd, "wb", buffering=1 << 20), Path(temp)


# Hard links are how a file is published without ever replacing one; some filesystems refuse them.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV})


def publish_new(temp: Path, path: Path) -> bool:
    """Make ``temp`` visible as ``path`` without replacing anything; True if we created it.

    Where the filesystem has no hard links it checks, then renames: the caller must be the only
    writer of ``path`` (consolidation holds its lock; a backup names a file of its own)."""
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if path.exists():
            return False
        os.replace(temp, path)
    return True


def sync_and_close(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably, with permission bits ``mode``.

    Raises OSError; the caller turns it into its own narrow error.
    """
    make_dirs(path.parent)
    handle, temp = temp_file(path.parent, path.name)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)
