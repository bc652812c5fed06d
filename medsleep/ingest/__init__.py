"""Ingest FHIR Observations: batches, dedupe, quarantine, progress."""

from medsleep.ingest.parsing import ParseOptions
from medsleep.ingest.pipeline import IngestReport, ingest_files, ingest_paths, ingest_records

__all__ = ["IngestReport", "ParseOptions", "ingest_files", "ingest_paths", "ingest_records"]
