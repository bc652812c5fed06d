"""The FHIR Bulk Data files of an export (see :mod:`medsleep.export.job`): originals verbatim and
once each, summaries as Observations with their Provenance, the audit chain as AuditEvents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from medsleep.export.model import ExportReport, ExportRequest, Progress
from medsleep.export.output import AtomicFile, ExportError
from medsleep.export.snapshot import (
    ArchivedBatch,
    ArchivedScope,
    ArchiveRecords,
    code_systems,
    iter_archived,
    iter_audit,
    iter_hot_resources,
    iter_summaries,
    load_runs,
    one_line,
    resolved_subject,
)
from medsleep.fhir.build import (
    AuditFacts,
    BuildError,
    Validator,
    audit_event,
    problem_outcome,
    summary_observation,
    summary_provenance,
    validate,
)


class _Counter:
    """Counts what was written across files and reports progress now and then."""

    def __init__(self, report: ExportReport, progress: Progress | None) -> None:
        self.report, self.progress = report, progress

    def add(self, n: int) -> None:
        self.report.resources += n
        if self.progress is not None and n:
            self.progress(self.report.resources)


def write_fhir(
    conn: Connection,
    out: Path,
    request: ExportRequest,
    root: Path,
    report: ExportReport,
    progress: Progress | None,
) -> None:
    """Write ``Observation``, ``Provenance``, ``AuditEvent`` (and, with invalid originals under
    ``validate_all``, ``OperationOutcome``) NDJSON into ``out``; fill ``report``."""
    validator = Validator(full=request.validate_all)
    counter = _Counter(report, progress)
    with (
        AtomicFile(out, "Observation.ndjson", "Observation") as observations,
        AtomicFile(out, "Provenance.ndjson", "Provenance") as provenances,
        AtomicFile(out, "AuditEvent.ndjson", "AuditEvent") as audits,
        AtomicFile(out, "OperationOutcome.ndjson", "OperationOutcome") as issues,
    ):
        originals = _Originals(observations, issues, request.validate_all, counter)
        for lines in iter_hot_resources(conn, request.scope):
            originals.write(lines, "hot store")
        _write_summaries(conn, request, root, report, validator, originals, provenances, counter)
        for batch in iter_audit(conn, request.patient, request.updated_since_ms):
            lines = [_audit_line(validator, facts) for facts, _ in batch]
            audits.write_lines(lines)
            counter.add(len(lines))
        report.files = [f.commit() for f in (observations, provenances, audits)]
        if issues.count:
            report.errors.append(issues.commit())
    report.model_validations = validator.model_checked + originals.validated


def _audit_line(validator: Validator, facts: AuditFacts) -> str:
    try:
        return _dumps(validator.check(audit_event(facts)))
    except BuildError as exc:
        raise ExportError(f"audit entry {facts.seq}: {exc}") from exc


def _write_summaries(
    conn: Connection,
    request: ExportRequest,
    root: Path,
    report: ExportReport,
    validator: Validator,
    originals: _Originals,
    provenances: AtomicFile,
    counter: _Counter,
) -> None:
    runs = load_runs(conn)
    systems = code_systems(conn, root)
    records = ArchiveRecords(conn)
    cells = ArchivedScope()

    def flush_archived() -> None:
        if request.include_archived and cells.cells_by_file:
            batches = iter_archived(conn, root, cells, records, request.scope, report.purged_files)
            for batch in batches:
                lines = _archived_lines(batch, originals.component_keys)
                originals.write(lines, f"archive file {batch.name}")
                report.archived += len(lines)
        cells.cells_by_file.clear()
        originals.component_keys.clear()
        records.clear()

    observation_lines: list[str] = []
    provenance_lines: list[str] = []

    def flush_summaries() -> None:
        originals.observations.write_lines(observation_lines)
        provenances.write_lines(provenance_lines)
        report.summaries += len(observation_lines)
        counter.add(len(observation_lines) + len(provenance_lines))
        observation_lines.clear()
        provenance_lines.clear()

    for batch in iter_summaries(conn, request.scope):
        records.load(name for s in batch for name in s.files)
        for summary in batch:
            if summary.facts.patient != cells.patient:
                flush_summaries()  # a patient's summaries, then the originals behind them
                flush_archived()
                cells.patient = summary.facts.patient
            run = runs.get(summary.facts.run_id)
            try:
                observation = validator.check(
                    summary_observation(summary.facts, run, systems.get(summary.facts.code))
                )
                provenance = validator.check(
                    summary_provenance(summary.facts, run, records.facts(summary.files))
                )
            except BuildError as exc:
                raise ExportError(f"summary {summary.facts.id}: {exc}") from exc
            observation_lines.append(_dumps(observation))
            provenance_lines.append(_dumps(provenance))
            cells.add(summary)
        flush_summaries()
    flush_archived()


class _Originals:
    """Writes original resources verbatim (one line each), optionally validating them."""

    def __init__(
        self, observations: AtomicFile, issues: AtomicFile, validate_all: bool, counter: _Counter
    ) -> None:
        self.observations, self.issues = observations, issues
        self.validate_all, self.counter = validate_all, counter
        self.validated = 0
        # Keys of multi-reading resources already written from the archive for this patient.
        self.component_keys: set[str] = set()

    def write(self, lines: list[str], where: str) -> None:
        if self.validate_all:
            self._validate(lines, where)
        self.observations.write_lines(lines)
        self.counter.add(len(lines))

    def _validate(self, lines: list[str], where: str) -> None:
        problems: list[str] = []
        for line in lines:
            self.validated += 1
            try:
                resource = orjson.loads(line)
                validate(resource)
            except (orjson.JSONDecodeError, BuildError) as exc:
                number = self.issues.count + len(problems) + 1
                key = _resource_ref(line)
                problems.append(_dumps(problem_outcome(number, f"{where}: {key}", str(exc))))
        self.issues.write_lines(problems)


def _resource_ref(line: str) -> str:
    try:
        resource = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "unparseable resource"
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _archived_lines(batch: ArchivedBatch, component_keys: set[str]) -> list[str]:
    """Original JSON of the archived resources to export from one file: once per resource,
    and not when the hot store holds a current version (already exported, or newer)."""
    lines = []
    previous = None
    rows = batch.rows
    for key, part, text, patient, version in zip(
        rows["resource_key"].tolist(),
        rows["part"].tolist(),
        rows["resource_json"].tolist(),
        rows["patient"].tolist(),
        rows["resource_version"].tolist(),
        strict=True,
    ):
        if key == previous or key in batch.hot_versions:
            continue
        previous = key
        multi = int(part) >= 0 or '"component"' in text
        if multi:
            # A panel's readings can sit in two files (one restored and re-collapsed).
            if key in component_keys:
                continue
            component_keys.add(key)
        lines.append(one_line(resolved_subject(str(text), str(patient), str(version))))
    return lines


def _dumps(resource: dict[str, Any]) -> str:
    return orjson.dumps(resource).decode()
