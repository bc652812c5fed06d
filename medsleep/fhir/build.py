"""Build FHIR R4 JSON for export: summary Observations, their Provenance, and AuditEvents.

Every builder returns a plain dict (what goes on the NDJSON line) and :func:`validate` checks it
with the fhir.resources R4B model of its type. R4B is what fhir.resources ships for the 4.x line;
Observation, Provenance and AuditEvent are unchanged between R4 (4.0.1) and R4B, so a dict that
validates as R4B is valid R4.

The ``urn:medsleep:*`` systems below name medsleep's own concepts (tags, runs, archive files,
policies, audit actions). They are identifiers, not web addresses. ``SUMMARY_TAG`` is how a
reader — medsleep ingest included — tells a medsleep summary from an original Observation.

This module imports nothing else of medsleep: its inputs are the small frozen dataclasses here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Final, NamedTuple

from medsleep.fhir.datatypes import CODE, ID
from medsleep.fhir.outcome import issue, operation_outcome
from medsleep.fhir.units import CATALOGUE, UCUM
from medsleep.fhir.validation import model_error

NS: Final = "urn:medsleep"
TAG_SYSTEM: Final = f"{NS}:tag"
SUMMARY_TAG: Final = {
    "system": TAG_SYSTEM,
    "code": "summary",
    "display": "medsleep summary of normal readings",
}
SUMMARY_ID_PREFIX: Final = "medsleep-summary-"
AUDIT_ID_PREFIX: Final = "medsleep-audit-"
SUMMARY_SYSTEM: Final = f"{NS}:summary"
RUN_SYSTEM: Final = f"{NS}:run"
ARCHIVE_FILE_SYSTEM: Final = f"{NS}:archive-file"
AUDIT_ACTION_SYSTEM: Final = f"{NS}:audit-action"
AUDIT_EVENT_SYSTEM: Final = f"{NS}:audit-event"
AUDIT_TYPE_SYSTEM: Final = f"{NS}:audit-event-type"
POLICY_PREFIX: Final = f"{NS}:policy:sha256:"

STATISTICS: Final = "http://terminology.hl7.org/CodeSystem/observation-statistics"
CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DICOM: Final = "http://dicom.nema.org/resources/ontology/DCM"
DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPANT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"

_CATEGORY_OF_KIND: Final = {
    "vital": ("vital-signs", "Vital Signs"),
    "body": ("vital-signs", "Vital Signs"),
    "lab": ("laboratory", "Laboratory"),
}
_ASSEMBLER: Final = {"system": PARTICIPANT_TYPE, "code": "assembler", "display": "Assembler"}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class BuildError(ValueError):
    """A value cannot go into a resource, or a built resource does not validate."""


class Built(NamedTuple):
    """A built resource and its *shape*: everything that decides its structure (which
    elements are present, how many repeat). Two resources of one shape differ only in values
    the builder has already checked against their FHIR datatype (see :class:`Validator`)."""

    resource: dict[str, Any]
    shape: Hashable


class SummaryFacts(NamedTuple):
    """One summary row, as the builders need it (times are epoch ms UTC). A NamedTuple, not a
    dataclass: exports build one per summary, and tuples are several times cheaper to make."""

    id: int
    run_id: int
    patient: str
    code: str
    unit: str
    band: str
    bucket_start_ms: int
    bucket_end_ms: int
    n: int
    min: float
    max: float
    mean: float
    std: float | None
    median: float
    first_ms: int
    last_ms: int


@dataclass(frozen=True)
class RunFacts:
    """The consolidation run that made a summary."""

    id: int
    policy_digest: str
    recorded_ms: int  # when the run finished (or started, if it never finished)


@dataclass(frozen=True)
class ArchiveFileFacts:
    """One archive file behind a summary; ``run_id`` is the run that removed its readings."""

    name: str
    sha256: str | None
    run_id: int | None


@dataclass(frozen=True)
class AuditFacts:
    """One row of the audit chain."""

    seq: int
    at_ms: int
    actor: str
    action: str
    details_json: str
    prev_hash: str
    hash: str
    patient: str | None = None
    run_id: int | None = None


@lru_cache(maxsize=1 << 16)  # an export formats the same minutes for every series
def instant(ms: int) -> str:
    """A FHIR instant (UTC, milliseconds) for epoch milliseconds.

    >>> instant(0)
    '1970-01-01T00:00:00.000Z'
    >>> instant(1767571260123)
    '2026-01-05T00:01:00.123Z'
    """
    day, in_day = divmod(ms, 86_400_000)
    seconds, millis = divmod(in_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date(day)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


@lru_cache(maxsize=4096)
def _date(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).date().isoformat()


def summary_id(number: int) -> str:
    """The ``id`` of the Observation (and its Provenance) exported for summary ``number``."""
    return f"{SUMMARY_ID_PREFIX}{number}"


def is_summary(resource: Mapping[str, Any]) -> bool:
    """Whether ``resource`` is a summary medsleep exported (by its ``meta.tag``).

    >>> is_summary({"resourceType": "Observation", "meta": {"tag": [SUMMARY_TAG]}})
    True
    """
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    if not isinstance(tags, list):
        return False
    return any(
        isinstance(t, Mapping)
        and t.get("system") == TAG_SYSTEM
        and t.get("code") == SUMMARY_TAG["code"]
        for t in tags
    )


def _id(value: str, what: str) -> str:
    if not ID.fullmatch(value):
        raise BuildError(f"{what} {value!r} is not a FHIR id")
    return value


def _code(value: str, what: str) -> str:
    if not CODE.fullmatch(value):
        raise BuildError(f"{what} {value!r} is not a FHIR code")
    return value


def _text(value: str, what: str) -> str:
    if not value.strip():
        raise BuildError(f"{what} is empty")
    return value


def _quantity(value: float, unit: str) -> dict[str, Any]:
    if not math.isfinite(value):
        raise BuildError(f"statistic {value!r} is not a finite decimal")
    if unit:
        return {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return {"value": value}


def _statistic_code(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": STATISTICS, "code": code, "display": display}]}


# Constant parts are built once and shared by every resource: treat built resources as
# read-only (the export serialises them straight away).
_AVERAGE = _statistic_code("average", "Average")
_MINIMUM = _statistic_code("minimum", "Minimum")
_MAXIMUM = _statistic_code("maximum", "Maximum")
_MEDIAN = _statistic_code("median", "Median")
_STD_DEV = _statistic_code("std-dev", "Standard Deviation")
_COUNT = _statistic_code("count", "Count")
_META = {"tag": [SUMMARY_TAG]}


def _band_text(band: str) -> str:
    if band == "artifact":
        return "a run of implausible values (probable sensor artifact, not a clinical value)"
    if band.startswith("news2-"):
        return f"NEWS2 sub-score {band.removeprefix('news2-')}"
    return band or "no NEWS2 band"


@lru_cache(maxsize=1024)
def _series(
    code: str, unit: str, system: str | None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The ``code`` element and ``category`` of a series (checked once per code and unit)."""
    _code(code, "code")
    if unit:
        _code(unit, "unit")
    info = CATALOGUE.get(code)
    if info is None:
        # Catalogued codes carry the catalogue's system; others the system their readings came
        # with (``system``), or none rather than a guess.
        coding = {"system": _text(system, "system"), "code": code} if system else {"code": code}
        return {"coding": [coding], "text": code}, None
    concept = {
        "coding": [{"system": info.system, "code": code, "display": info.name}],
        "text": info.name,
    }
    category = _CATEGORY_OF_KIND.get(info.kind)
    if category is None:
        return concept, None
    coding = {"system": CATEGORY, "code": category[0], "display": category[1]}
    return concept, [{"coding": [coding]}]


@lru_cache(maxsize=1 << 14)
def _subject(patient: str) -> dict[str, str]:
    return {"reference": f"Patient/{_id(patient, 'patient')}"}


def summary_observation(
    summary: SummaryFacts, run: RunFacts | None, system: str | None = None
) -> Built:
    """A summary as an Observation: the vital's code (in ``system``, the one its readings came
    with, when it is outside the catalogue), ``effectivePeriod`` from its first to its last
    reading, and one ``component`` per statistic coded from ``observation-statistics`` with
    UCUM quantities (no standard deviation for one reading); tagged with ``SUMMARY_TAG``.
    """
    concept, category = _series(summary.code, summary.unit, system)
    unit = summary.unit
    components = [
        {"code": _AVERAGE, "valueQuantity": _quantity(summary.mean, unit)},
        {"code": _MINIMUM, "valueQuantity": _quantity(summary.min, unit)},
        {"code": _MAXIMUM, "valueQuantity": _quantity(summary.max, unit)},
        {"code": _MEDIAN, "valueQuantity": _quantity(summary.median, unit)},
    ]
    std = summary.std if summary.n >= 2 else None  # one reading has no spread to state
    spread = std is not None
    if std is not None:
        components.append({"code": _STD_DEV, "valueQuantity": _quantity(std, unit)})
    components.append(
        {
            "code": _COUNT,
            "valueQuantity": {"value": summary.n, "unit": "readings", "system": UCUM, "code": "1"},
        }
    )
    bucket_minutes = (summary.bucket_end_ms - summary.bucket_start_ms) // 60_000
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"{SUMMARY_ID_PREFIX}{summary.id}",
        "meta": _META,
        "identifier": [{"system": SUMMARY_SYSTEM, "value": str(summary.id)}],
        "status": "final",
    }
    if category is not None:
        resource["category"] = category
    resource["code"] = concept
    resource["subject"] = _subject(summary.patient)
    resource["effectivePeriod"] = {
        "start": instant(summary.first_ms),
        "end": instant(summary.last_ms),
    }
    if run is not None:
        resource["issued"] = instant(run.recorded_ms)
    resource["note"] = [
        {
            "text": (
                f"medsleep summary of {summary.n} normal readings, {_band_text(summary.band)}, "
                f"in the {bucket_minutes}-minute bucket from {instant(summary.bucket_start_ms)}; "
                "the original Observations are kept in the medsleep archive (see Provenance)."
            )
        }
    ]
    resource["component"] = components
    shape = (
        "summary",
        "system" in concept["coding"][0],
        category is not None,
        bool(unit),
        spread,
        run is not None,
    )
    return Built(resource, shape)


_ACTIVITY: Final = {
    "coding": [{"system": DATA_OPERATION, "code": "CREATE", "display": "create"}],
    "text": "medsleep consolidation: normal readings summarised and archived",
}


@lru_cache(maxsize=1024)
def _run_agent(run_id: int) -> list[dict[str, Any]]:
    return [
        {
            "type": {"coding": [_ASSEMBLER]},
            "who": {
                "identifier": {"system": RUN_SYSTEM, "value": str(run_id)},
                "display": f"medsleep consolidation run {run_id}",
            },
        }
    ]


@lru_cache(maxsize=1 << 12)
def _file_entities(file: ArchiveFileFacts) -> tuple[dict[str, Any], dict[str, Any]]:
    _text(file.name, "archive file name")
    checksum = f", sha256 {file.sha256}" if file.sha256 else ""
    by = f"consolidation run {file.run_id}" if file.run_id is not None else "consolidation"
    what = {"system": ARCHIVE_FILE_SYSTEM, "value": file.name}
    source = {
        "role": "source",
        "what": {
            "identifier": what,
            "display": f"the original readings, in archive file {file.name}{checksum}",
        },
    }
    removal = {
        "role": "removal",
        "what": {
            "identifier": what,
            "display": f"raw readings removed from the hot store by {by} "
            f"into archive file {file.name}",
        },
    }
    return source, removal


def summary_provenance(
    summary: SummaryFacts, run: RunFacts | None, files: Sequence[ArchiveFileFacts]
) -> Built:
    """Provenance of a summary: the run that made it (agent), its policy, and each archive
    file holding its original readings (entity roles ``source`` and ``removal``)."""
    sid = f"{SUMMARY_ID_PREFIX}{summary.id}"
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": sid,
        "target": [{"reference": f"Observation/{sid}"}],
        "occurredPeriod": {
            "start": instant(summary.first_ms),
            "end": instant(summary.last_ms),
        },
        "recorded": instant(run.recorded_ms if run is not None else summary.last_ms),
    }
    if run is not None:
        resource["policy"] = [f"{POLICY_PREFIX}{_code(run.policy_digest, 'policy digest')}"]
    resource["activity"] = _ACTIVITY
    resource["agent"] = _run_agent(summary.run_id)
    if files:
        resource["entity"] = [entity for file in files for entity in _file_entities(file)]
    return Built(resource, ("provenance", run is not None, len(files)))


# action prefix -> (type system, type code, display, CRUDE action)
_AUDIT_TYPES: Final = {
    "ingest": (DICOM, "110107", "Import", "C"),
    "restore": (DICOM, "110107", "Import", "C"),
    "export": (DICOM, "110106", "Export", "R"),
    "consolidate": (AUDIT_TYPE_SYSTEM, "consolidation", "Consolidation run", "U"),
    "purge": (AUDIT_TYPE_SYSTEM, "purge", "Archive purge", "D"),
    "hold": (AUDIT_TYPE_SYSTEM, "legal-hold", "Legal hold", "U"),
    "dashboard": (DICOM, "110114", "User Authentication", "E"),
}
_OTHER_TYPE: Final = (AUDIT_TYPE_SYSTEM, "other", "Other medsleep activity", "E")
_SYSTEM_OBJECT: Final = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
_PERSON: Final = {"system": ENTITY_TYPE, "code": "1", "display": "Person"}


def _outcome(action: str) -> str:
    if action.endswith(".failed"):
        return "8"  # serious failure
    if action.endswith((".interrupted", "_failed")):
        return "4"  # minor failure: a run's committed shards stand; a refused login
    return "0"


def audit_event(event: AuditFacts) -> Built:
    """One audit-chain entry as an AuditEvent. Its seq, details and both hashes travel along
    as entity details, so a reader can re-check each link of the chain."""
    system, code, display, crude = _AUDIT_TYPES.get(event.action.split(".")[0], _OTHER_TYPE)
    _code(event.action, "audit action")
    details = [
        {"type": "seq", "valueString": str(event.seq)},
        {"type": "details", "valueString": _text(event.details_json, "audit details")},
        {"type": "prev_hash", "valueString": _text(event.prev_hash, "previous hash")},
        {"type": "hash", "valueString": _text(event.hash, "hash")},
    ]
    entities: list[dict[str, Any]] = [
        {
            "what": {"identifier": {"system": AUDIT_EVENT_SYSTEM, "value": str(event.seq)}},
            "type": dict(_SYSTEM_OBJECT),
            "name": f"medsleep audit chain entry {event.seq}",
            "detail": details,
        }
    ]
    if event.run_id is not None:
        entities.append(
            {
                "what": {"identifier": {"system": RUN_SYSTEM, "value": str(event.run_id)}},
                "type": dict(_SYSTEM_OBJECT),
            }
        )
    patient_kind = None
    if event.patient is not None:
        # Holds accept any text as a patient; only a FHIR id can be a Patient reference.
        patient_kind = "reference" if ID.fullmatch(event.patient) else "display"
        what = (
            {"reference": f"Patient/{event.patient}"}
            if patient_kind == "reference"
            else {"display": _text(event.patient, "patient")}
        )
        entities.append({"what": what, "type": dict(_PERSON)})
    resource = {
        "resourceType": "AuditEvent",
        "id": f"{AUDIT_ID_PREFIX}{event.seq}",
        "type": {"system": system, "code": code, "display": display},
        "subtype": [{"system": AUDIT_ACTION_SYSTEM, "code": event.action}],
        "action": crude,
        "recorded": instant(event.at_ms),
        "outcome": _outcome(event.action),
        "agent": [{"who": {"display": event.actor or "unknown"}, "requestor": True}],
        "source": {
            "observer": {"display": "medsleep"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
    return Built(resource, ("audit", event.run_id is not None, patient_kind))


@cache
def _model(resource_type: str) -> Any:
    # Imported on first use: parsing and ingest workers never pay for these models.
    if resource_type == "Observation":
        from fhir.resources.R4B.observation import Observation

        return Observation
    if resource_type == "Provenance":
        from fhir.resources.R4B.provenance import Provenance

        return Provenance
    if resource_type == "AuditEvent":
        from fhir.resources.R4B.auditevent import AuditEvent

        return AuditEvent
    if resource_type == "OperationOutcome":
        from fhir.resources.R4B.operationoutcome import OperationOutcome

        return OperationOutcome
    raise BuildError(f"no fhir.resources model for resourceType {resource_type!r}")


def validate(resource: Mapping[str, Any]) -> None:
    """Validate ``resource`` with its fhir.resources R4B model; raise BuildError if invalid."""
    error = model_error(_model(str(resource.get("resourceType"))), resource)
    if error is not None:
        raise BuildError(f"{resource.get('resourceType')}/{resource.get('id')}: {error}")


class Validator:
    """Validates built resources at export speed.

    fhir.resources validates a few thousand resources a second; an export writes tens of
    thousands. The builders check every value they are given against its FHIR datatype (ids,
    codes, finite decimals, non-empty strings) and produce fixed structures, so the model
    validates the first resource of each shape; with ``full=True`` it validates every one.
    """

    def __init__(self, *, full: bool = False) -> None:
        self.full = full
        self.model_checked = 0
        self._shapes: set[Hashable] = set()

    def check(self, built: Built) -> dict[str, Any]:
        """Validate ``built`` (see the class docstring) and return its resource."""
        if self.full or built.shape not in self._shapes:
            validate(built.resource)
            self._shapes.add(built.shape)
            self.model_checked += 1
        return built.resource


def problem_outcome(number: int, where: str, problem: str) -> dict[str, Any]:
    """An OperationOutcome for the Bulk Data ``error`` file: one problem with one resource."""
    found = issue("error", "invalid", _text(problem, "problem"), _text(where, "where"))
    return operation_outcome([found], f"medsleep-issue-{number}")
