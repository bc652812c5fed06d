"""Compliance exports (FHIR Bulk Data NDJSON, CSV, Parquet) through a registry of writers."""

from medsleep.export.job import WRITERS, export
from medsleep.export.model import FORMATS, ExportReport, ExportRequest
from medsleep.export.output import ExportError, OutputFile

__all__ = [
    "FORMATS",
    "WRITERS",
    "ExportError",
    "ExportReport",
    "ExportRequest",
    "OutputFile",
    "export",
]
