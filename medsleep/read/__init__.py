"""The one read model the CLI and the dashboard share: readings, summaries, runs, quarantine,
overview, digest, patient views and the plain-words text of every reason.

Queries return plain values (dicts, frozen dataclasses, small frames, epoch-ms times); the front
ends only lay them out. ``from medsleep import read`` then ``read.night_digest(...)``.
"""

from medsleep.read.audit import AUDIT_COLUMNS, audit_actions, audit_chain_status, recent_audit
from medsleep.read.checks import RecordedCheck, last_dry_run, last_evaluation
from medsleep.read.digest import (
    NIGHT,
    DigestEpisode,
    DigestRow,
    NightDigest,
    newest_data_ms,
    night_digest,
    night_ending,
    night_window,
)
from medsleep.read.explain import describe_reason, explain_reason
from medsleep.read.forgotten import STRETCH_COLUMNS, collapsed_stretches, verify_file
from medsleep.read.overview import (
    StoreOverview,
    compression_by_day,
    reasons_breakdown,
    retained_by_kind,
    store_overview,
)
from medsleep.read.patient import PatientView, list_patients, patient_span, patient_view
from medsleep.read.patients import PatientHeader, patient_header, patient_headers
from medsleep.read.prepared import DigestSource, current_digest, prepare_digest, prepare_nights
from medsleep.read.quarantine import list_quarantine, quarantine_entries
from medsleep.read.readings import (
    READING_FIELDS,
    SUMMARY_FIELDS,
    ReadingFilter,
    iter_readings,
    iter_summaries,
    reasons_for,
)
from medsleep.read.reviews import (
    ReviewError,
    ReviewMark,
    add_review,
    record_patient_view,
)
from medsleep.read.runs import RUN_COLUMNS, RunDetail, list_runs, recent_runs, run_detail
from medsleep.read.space import ArchiveMonth, StoreStats, TableSpace, store_stats

__all__ = [
    "RecordedCheck",
    "last_dry_run",
    "last_evaluation",
    "AUDIT_COLUMNS",
    "READING_FIELDS",
    "RUN_COLUMNS",
    "STRETCH_COLUMNS",
    "SUMMARY_FIELDS",
    "ArchiveMonth",
    "DigestEpisode",
    "DigestPatient",
    "DigestRow",
    "MorningDigest",
    "NIGHT",
    "NightDigest",
    "DigestSource",
    "PatientHeader",
    "ReviewError",
    "ReviewMark",
    "PatientView",
    "ReadingFilter",
    "RunDetail",
    "StoreOverview",
    "StoreStats",
    "TableSpace",
    "audit_actions",
    "audit_chain_status",
    "collapsed_stretches",
    "compression_by_day",
    "describe_reason",
    "explain_reason",
    "iter_readings",
    "add_review",
    "iter_summaries",
    "list_patients",
    "list_quarantine",
    "list_runs",
    "newest_data_ms",
    "night_digest",
    "current_digest",
    "prepare_digest",
    "prepare_nights",
    "patient_header",
    "patient_headers",
    "night_ending",
    "night_window",
    "patient_span",
    "patient_view",
    "quarantine_entries",
    "reasons_breakdown",
    "reasons_for",
    "record_patient_view",
    "recent_audit",
    "recent_runs",
    "retained_by_kind",
    "run_detail",
    "store_overview",
    "store_stats",
    "verify_file",
]
