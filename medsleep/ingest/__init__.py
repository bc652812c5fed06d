"""Ingest FHIR Observations: batches, dedupe, quarantine, progress.

The names below load on first use: parse workers import ``ingest.parsing`` without loading
SQLAlchemy (which ``ingest.pipeline`` needs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medsleep.store.lazy import lazy_names

if TYPE_CHECKING:
    from medsleep.ingest.parsing import ParseOptions
    from medsleep.ingest.pipeline import (
        IngestReport,
        ingest_files,
        ingest_paths,
        ingest_records,
        ingest_stream,
    )

_HOME = {
    "ParseOptions": "medsleep.ingest.parsing",
    "IngestReport": "medsleep.ingest.pipeline",
    "ingest_files": "medsleep.ingest.pipeline",
    "ingest_paths": "medsleep.ingest.pipeline",
    "ingest_records": "medsleep.ingest.pipeline",
    "ingest_stream": "medsleep.ingest.pipeline",
}

__getattr__ = lazy_names(__name__, _HOME)

__all__ = [
    "IngestReport",
    "ParseOptions",
    "ingest_files",
    "ingest_paths",
    "ingest_records",
    "ingest_stream",
]
