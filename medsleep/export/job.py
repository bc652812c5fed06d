"""Compliance exports: FHIR Bulk Data NDJSON (R4), CSV or Parquet, with a manifest of counts
and sha256 checksums, published last, and an ``export`` event on the audit chain.

FHIR output (``format="fhir"``):

* ``Observation.ndjson`` — each current (raw or retained) resource's original JSON, once per
  resource even when a panel backs several readings; then, patient by patient, each active
  summary as an Observation tagged :data:`medsleep.fhir.build.SUMMARY_TAG` and, with
  ``include_archived``, the original JSON of every collapsed reading behind those summaries,
  read from the checksum-verified archive.
* ``Provenance.ndjson`` — one per summary: its run, its policy, its archive files.
* ``AuditEvent.ndjson`` — the audit chain (runs, restores, exports, purges, holds, ingests).

Superseded and retracted versions are not current data and are left out; the manifest counts
them. Files are written to temporary names and renamed into place; the manifest comes last, so
a folder without ``manifest.json`` is an export that did not finish.

CSV and Parquet (``format="csv"``/``"parquet"``) hold the same content as tables: see
:mod:`medsleep.export.tables`.

    report = export(Store.open(url, Path("medsleep-archive")), Path("out"),
                    ExportRequest(include_archived=True))
    report.files  # [OutputFile(type="Observation", name="Observation.ndjson", count=..., ...)]
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from medsleep.audit import append_with_retry
from medsleep.export.fhir import write_fhir
from medsleep.export.model import FHIR_FILES, FORMATS, TABLES, ExportReport, ExportRequest, Progress
from medsleep.export.output import (
    ExportError,
    OutputFile,
    manifest_bytes,
    prepare_output_dir,
    publish_manifest,
)
from medsleep.export.snapshot import chain_head, excluded_counts, snapshot
from medsleep.export.tables import write_tables
from medsleep.fhir.build import instant
from medsleep.fhir.outcome import FHIR_VERSION
from medsleep.store.handle import Store

log = logging.getLogger(__name__)

Writer = Callable[[Connection, Path, ExportRequest, Path, ExportReport, Progress | None], None]
# One writer per format: a new format is a new module and one line here.
WRITERS: dict[str, Writer] = {"fhir": write_fhir, "csv": write_tables, "parquet": write_tables}
assert set(WRITERS) == set(FORMATS)

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportReport",
    "ExportRequest",
    "OutputFile",
    "export",
]


def export(
    store: Store, out: Path, request: ExportRequest, *, progress: Progress | None = None
) -> ExportReport:
    """Export ``request`` into the new (or empty) folder ``out``; return what was written.

    Raises ExportError for a bad request or an output folder in use, ArchiveError when an
    archive file behind an exported summary is missing or fails its checksum.
    """
    if request.format not in WRITERS:
        raise ExportError(f"unknown export format {request.format!r} (fhir, csv or parquet)")
    if request.validate_all and request.format != "fhir":
        raise ExportError("--validate checks FHIR resources: it needs --format fhir")
    since, until = request.since_ms, request.until_ms
    if since is not None and until is not None and since >= until:
        raise ExportError("--since must be before --until")
    engine, archive_root = store.engine, store.archive_root
    actor, now_ms = store.actor, store.now_ms()
    prepare_output_dir(out)
    started = time.perf_counter()
    report = ExportReport(out=out, format=request.format)
    try:
        with snapshot(engine) as conn:
            head = chain_head(conn)
            report.excluded = excluded_counts(conn, request.scope)
            WRITERS[request.format](conn, out, request, archive_root, report, progress)
        _leave_out_unwanted(out, request, report)
        report.seconds = time.perf_counter() - started
        manifest = _manifest(request, report, now_ms, head)
        data = manifest_bytes(manifest)
        report.manifest_sha256 = hashlib.sha256(data).hexdigest()
        # Audited before the manifest is published: no export is ever complete and unaudited.
        report.audit_seq = _audit(engine, request, report, actor, now_ms)
    except BaseException:
        _discard(out, request.format)
        raise
    report.files.append(publish_manifest(out, data))
    log.info("export: %d resources to %s in %.1f s", report.resources, out, report.seconds)
    return report


def _discard(out: Path, fmt: str) -> None:
    """Remove what a failed export published: the folder was empty when it started."""
    names = FHIR_FILES if fmt == "fhir" else tuple(f"{t}.{fmt}" for t in TABLES)
    for name in names:
        (out / name).unlink(missing_ok=True)


def _leave_out_unwanted(out: Path, request: ExportRequest, report: ExportReport) -> None:
    """In a FHIR export, empty files and files of types the request did not ask for are not
    part of it (the Bulk Data IG: an output entry per file that holds resources). Tables keep
    their empty files: a header says what the columns would be."""
    if request.format != "fhir":
        return

    def wanted(f: OutputFile) -> bool:
        return f.count > 0 and (request.types is None or f.type in request.types)

    for f in [*report.files, *report.errors]:
        if not wanted(f):
            (out / f.name).unlink(missing_ok=True)
            if f.count and f in report.files:
                report.resources -= f.count
    report.files = [f for f in report.files if wanted(f)]
    report.errors = [f for f in report.errors if f.count > 0]


def _manifest_item(request: ExportRequest, out: Path, f: OutputFile) -> dict[str, Any]:
    """One ``output``/``error`` entry: the IG's type, url, count; medsleep's checksum and
    size under ``extension``."""
    return {
        "type": f.type,
        "url": request.file_url(out, f.name),
        "count": f.count,
        "extension": {"sha256": f.sha256, "bytes": f.bytes},
    }


def _manifest(
    request: ExportRequest, report: ExportReport, now_ms: int, head: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "transactionTime": instant(now_ms),
        "request": request.as_url(),
        "requiresAccessToken": request.requires_access_token,
        "output": [_manifest_item(request, report.out, f) for f in report.files],
        "error": [_manifest_item(request, report.out, f) for f in report.errors],
        "extension": {
            "medsleep": {
                "format": request.format,
                "fhirVersion": FHIR_VERSION if request.format == "fhir" else None,
                "patient": request.patient,
                "since": None if request.since_ms is None else instant(request.since_ms),
                "until": None if request.until_ms is None else instant(request.until_ms),
                "includeArchived": request.include_archived,
                "summaries": report.summaries,
                "archivedReadingsExported": report.archived,
                "excluded": report.excluded,
                "purgedArchiveFiles": sorted(set(report.purged_files)),
                "auditChainHead": head,
            }
        },
    }


def _audit(
    engine: Engine, request: ExportRequest, report: ExportReport, actor: str, now_ms: int
) -> int:
    details = {
        "format": request.format,
        "out": str(report.out),
        "patient": request.patient,
        "since_ms": request.since_ms,
        "until_ms": request.until_ms,
        "include_archived": request.include_archived,
        "resources": report.resources,
        "files": {f.name: {"count": f.count, "sha256": f.sha256} for f in report.files},
        "manifest_sha256": report.manifest_sha256,
    }
    return append_with_retry(engine, actor=actor, action="export", details=details, at_ms=now_ms)
