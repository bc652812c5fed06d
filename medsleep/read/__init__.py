"""The one read model the CLI and the dashboard share: readings, summaries, runs, quarantine,
overview, digest, patient views and the plain-words text of every reason.

Queries return plain values (dicts, frozen dataclasses, small frames, epoch-ms times); the front
ends only lay them out. ``from medsleep import read`` then ``read.morning_digest(...)``.
"""

from medsleep.read.audit import AUDIT_COLUMNS, audit_chain_status, recent_audit
from medsleep.read.digest import DigestPatient, MorningDigest, digest_run_ids, morning_digest
from medsleep.read.explain import describe_reason, explain_reason
from medsleep.read.overview import (
    StoreOverview,
    compression_by_day,
    reasons_breakdown,
    retained_by_kind,
    store_overview,
)
from medsleep.read.patient import PatientView, list_patients, patient_span, patient_view
from medsleep.read.quarantine import list_quarantine, quarantine_entries
from medsleep.read.readings import (
    READING_FIELDS,
    SUMMARY_FIELDS,
    ReadingFilter,
    iter_readings,
    iter_summaries,
    reasons_for,
)
from medsleep.read.runs import RUN_COLUMNS, RunDetail, list_runs, recent_runs, run_detail
from medsleep.read.space import ArchiveMonth, StoreStats, TableSpace, store_stats

__all__ = [
    "AUDIT_COLUMNS",
    "READING_FIELDS",
    "RUN_COLUMNS",
    "SUMMARY_FIELDS",
    "ArchiveMonth",
    "DigestPatient",
    "MorningDigest",
    "PatientView",
    "ReadingFilter",
    "RunDetail",
    "StoreOverview",
    "StoreStats",
    "TableSpace",
    "audit_chain_status",
    "compression_by_day",
    "describe_reason",
    "digest_run_ids",
    "explain_reason",
    "iter_readings",
    "iter_summaries",
    "list_patients",
    "list_quarantine",
    "list_runs",
    "morning_digest",
    "patient_span",
    "patient_view",
    "quarantine_entries",
    "reasons_breakdown",
    "reasons_for",
    "recent_audit",
    "recent_runs",
    "retained_by_kind",
    "run_detail",
    "store_overview",
    "store_stats",
]
