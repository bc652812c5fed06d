"""FHIR in and out: Observations to plain readings, and the vital-sign catalogue."""

from medsleep.fhir.parse import (
    ParsedReading,
    ParseOutcome,
    ResourceRejected,
    parse_observation,
)
from medsleep.fhir.units import CATALOGUE, SeriesInfo, to_canonical

__all__ = [
    "CATALOGUE",
    "ParseOutcome",
    "ParsedReading",
    "ResourceRejected",
    "SeriesInfo",
    "parse_observation",
    "to_canonical",
]
