"""What an export is asked for and what it reports: the types every export writer shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsleep.export.output import OutputFile
from medsleep.export.snapshot import ExportScope
from medsleep.fhir.build import instant

FORMATS = ("fhir", "csv", "parquet")
FHIR_FILES = (
    "Observation.ndjson",
    "Provenance.ndjson",
    "AuditEvent.ndjson",
    "OperationOutcome.ndjson",
)
TABLES = ("readings", "summaries", "audit_events")
Progress = Callable[[int], None]  # resources (or rows) written so far


@dataclass(frozen=True)
class ExportRequest:
    """What to export. Readings in ``[since_ms, until_ms)``; summaries whose bucket overlaps it.

    ``validate_all`` checks every line with fhir.resources, originals included (slow: a few
    thousand resources a second); originals that fail are still exported — they are the
    record — and each gets an OperationOutcome in the manifest's ``error`` file.
    """

    format: str = "fhir"
    patient: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    include_archived: bool = False
    validate_all: bool = False
    # Where the files will be served from: the manifest's output URLs are this plus the file
    # name (the Bulk Data IG wants absolute URLs); without it, file:// URLs of the files.
    base_url: str | None = None
    kickoff_url: str | None = None  # the request as a client sent it (the $export endpoint)
    requires_access_token: bool = False  # the files are served only with a bearer token
    types: tuple[str, ...] | None = None  # FHIR resource types to keep (Bulk Data _type)
    # Bulk Data _since: only what medsleep stored or made from then on (export.updated)
    updated_since_ms: int | None = None

    def file_url(self, out: Path, name: str) -> str:
        """The absolute URL of the exported file ``name`` in folder ``out``."""
        if self.base_url is not None:
            return f"{self.base_url.rstrip('/')}/{name}"
        return (out / name).resolve().as_uri()

    @property
    def scope(self) -> ExportScope:
        return ExportScope(self.patient, self.since_ms, self.until_ms, self.updated_since_ms)

    def as_url(self) -> str:
        """The request in the form of a Bulk Data kick-off URL, for the manifest."""
        if self.kickoff_url is not None:
            return self.kickoff_url
        params = [
            f"_outputFormat={'application/fhir+ndjson' if self.format == 'fhir' else self.format}"
        ]
        if self.patient is not None:
            params.append(f"patient=Patient/{self.patient}")
        if self.since_ms is not None:
            params.append(f"since={instant(self.since_ms)}")
        if self.until_ms is not None:
            params.append(f"until={instant(self.until_ms)}")
        if self.include_archived:
            params.append("includeArchived=true")
        if self.types is not None:
            params.append(f"_type={','.join(self.types)}")
        if self.updated_since_ms is not None:
            params.append(f"_since={instant(self.updated_since_ms)}")
        base = "medsleep:" if self.base_url is None else self.base_url.rstrip("/") + "/"
        return f"{base}$export?" + "&".join(params)


@dataclass
class ExportReport:
    out: Path
    format: str
    files: list[OutputFile] = field(default_factory=list)
    errors: list[OutputFile] = field(default_factory=list)
    resources: int = 0
    summaries: int = 0
    archived: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    purged_files: list[str] = field(default_factory=list)
    model_validations: int = 0
    seconds: float = 0.0
    manifest_sha256: str = ""
    audit_seq: int | None = None

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "format": self.format,
            "resources": self.resources,
            "summaries": self.summaries,
            "archived": self.archived,
            "excluded": self.excluded,
            "purged_files": self.purged_files,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.rate),
            "manifest_sha256": self.manifest_sha256,
            "audit_seq": self.audit_seq,
            "files": [f.as_manifest() for f in self.files],
            "errors": [f.as_manifest() for f in self.errors],
        }
