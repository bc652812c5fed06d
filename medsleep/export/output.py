"""Export files on disk: written to a hidden temporary file, checksummed while written, fsynced
and renamed into place, so a reader never sees half a file; the manifest is published last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from medsleep.errors import MedsleepError
from medsleep.files import fsync_dir, sync_and_close, temp_file

log = logging.getLogger(__name__)


class ExportError(MedsleepError):
    """The export cannot be written (output folder in use, unreadable archive, bad request)."""


@dataclass(frozen=True)
class OutputFile:
    """One published export file, as the manifest lists it."""

    type: str
    name: str
    count: int
    sha256: str
    bytes: int

    def as_manifest(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "url": self.name,
            "count": self.count,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }


def prepare_output_dir(out: Path) -> None:
    """Create ``out`` (owner-only: exports hold PHI) or accept it when empty."""
    if out.exists():
        if not out.is_dir():
            raise ExportError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            raise ExportError(
                f"output folder {out} is not empty; exports never mix or overwrite files"
            )
        return
    try:
        out.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise ExportError(f"cannot create output folder {out}: {exc.strerror}") from exc


class AtomicFile:
    """A binary file published under its final name only by :meth:`commit`.

    Counts what the caller says it wrote (``count``) and hashes every byte. Use as a context
    manager: leaving the block without ``commit`` removes the temporary file.
    """

    def __init__(self, out: Path, name: str, resource_type: str) -> None:
        self.out, self.name, self.type = out, name, resource_type
        self.count = 0
        self.closed = False
        self._hash = hashlib.sha256()
        self._bytes = 0
        try:
            self._handle, self._temp = temp_file(out, name)
        except OSError as exc:
            raise ExportError(f"cannot write {out / name}: {exc.strerror}") from exc
        self._published: OutputFile | None = None

    # --- the file-object surface pyarrow and io.TextIOWrapper need
    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        self._bytes += len(data)
        return self._handle.write(data)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._handle.flush()

    def tell(self) -> int:
        return self._bytes

    def close(self) -> None:
        # pyarrow and TextIOWrapper close their sink; the file stays ours until commit.
        self.closed = True

    def write_lines(self, lines: list[str]) -> None:
        """Write NDJSON lines (without their newlines) and count them."""
        if lines:
            self.write(("\n".join(lines) + "\n").encode())
            self.count += len(lines)

    def commit(self) -> OutputFile:
        """fsync, rename to the final name, fsync the folder; return what was published."""
        if self._published is not None:
            return self._published
        try:
            sync_and_close(self._handle)
            os.replace(self._temp, self.out / self.name)
            fsync_dir(self.out)
        except OSError as exc:
            raise ExportError(f"cannot write {self.out / self.name}: {exc.strerror}") from exc
        self._published = OutputFile(
            self.type, self.name, self.count, self._hash.hexdigest(), self._bytes
        )
        return self._published

    def abort(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._published is None:
            self.abort()


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()


def publish_manifest(out: Path, data: bytes) -> OutputFile:
    with AtomicFile(out, "manifest.json", "manifest") as handle:
        handle.write(data)
        return handle.commit()
