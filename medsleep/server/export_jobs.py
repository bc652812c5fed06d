"""Bulk Data ``$export`` jobs of the server, kept on disk so every ``--workers`` process sees
the same jobs: ``<export_dir>/<job>/job.json`` (who asked, what, which process runs it),
``files/`` (the export, ``manifest.json`` last), ``error.json`` when it failed, and a
``cancelled`` mark. A job is visible only to the token that started it (exports hold PHI).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsleep.errors import MedsleepError
from medsleep.export import ExportRequest, export
from medsleep.store.handle import Store

log = logging.getLogger(__name__)
_JOB = "job.json"
_ERROR = "error.json"
_CANCELLED = "cancelled"
_FILES = "files"


@dataclass(frozen=True)
class JobStatus:
    state: str  # running, complete, failed
    progress: int = 0  # resources written so far (known in the process that runs the job)
    manifest: dict[str, Any] | None = None
    error: str | None = None


class JobNotFoundError(MedsleepError):
    """No such export job for this token (never started, cancelled, or another token's)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ExportJobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._progress: dict[str, int] = {}

    def _folder(self, job: str, owner: str) -> Path:
        folder = self.root / job
        try:
            uuid.UUID(job)
            meta = json.loads((folder / _JOB).read_text())
        except (ValueError, OSError) as exc:
            raise JobNotFoundError(f"no export job {job}") from exc
        if meta.get("owner") != owner or (folder / _CANCELLED).exists():
            raise JobNotFoundError(f"no export job {job}")
        return folder

    def start(
        self,
        request: Callable[[str], ExportRequest],
        owner: str,
        store: Store,
    ) -> str:
        """Start an export in a thread; ``request`` builds the request for the job's id."""
        job = str(uuid.uuid4())
        folder = self.root / job
        folder.mkdir(parents=True, mode=0o700)
        os.chmod(self.root, 0o700)
        (folder / _JOB).write_text(json.dumps({"owner": owner, "pid": os.getpid()}))
        self._progress[job] = 0
        wanted = request(job)

        def progress(done: int) -> None:
            self._progress[job] = done

        def run() -> None:
            try:
                export(store.acting_as(f"http:{owner}"), folder / _FILES, wanted, progress=progress)
            except MedsleepError as exc:
                (folder / _ERROR).write_text(json.dumps({"error": str(exc)}))
            except Exception as exc:  # a job must end failed, never "running" for ever
                log.error("export job %s failed: %s", job, type(exc).__name__, exc_info=exc)
                (folder / _ERROR).write_text(json.dumps({"error": "internal error"}))
            finally:
                self._progress.pop(job, None)
                if (folder / _CANCELLED).exists():
                    shutil.rmtree(folder / _FILES, ignore_errors=True)

        threading.Thread(target=run, name=f"export-{job}", daemon=True).start()
        return job

    def status(self, job: str, owner: str) -> JobStatus:
        folder = self._folder(job, owner)
        manifest = folder / _FILES / "manifest.json"
        if manifest.exists():
            return JobStatus("complete", manifest=json.loads(manifest.read_text()))
        if (folder / _ERROR).exists():
            return JobStatus("failed", error=json.loads((folder / _ERROR).read_text())["error"])
        if job not in self._progress:
            pid = int(json.loads((folder / _JOB).read_text())["pid"])
            if pid == os.getpid() or not _alive(pid):  # its process ended without finishing
                return JobStatus("failed", error="the export was interrupted (server stopped)")
        return JobStatus("running", self._progress.get(job, 0))

    def cancel(self, job: str, owner: str) -> None:
        """Cancel a job and delete its files (a running job deletes them when it stops)."""
        folder = self._folder(job, owner)
        (folder / _CANCELLED).touch()
        if job not in self._progress:
            shutil.rmtree(folder / _FILES, ignore_errors=True)

    def file(self, job: str, owner: str, name: str) -> Path:
        """An output file of a complete job, by the name its manifest lists."""
        status = self.status(job, owner)
        listed = {
            str(item["url"]).rsplit("/", 1)[-1]
            for item in [
                *(status.manifest or {}).get("output", []),
                *(status.manifest or {}).get("error", []),
            ]
        }
        if status.state != "complete" or name not in listed:
            raise JobNotFoundError(f"no file {name!r} in export job {job}")
        return self.root / job / _FILES / name
