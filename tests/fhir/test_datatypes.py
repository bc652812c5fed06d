"""The FHIR datatype patterns medsleep checks by are the ones fhir.resources validates by."""

from __future__ import annotations

from fhir_core import types as fhir_types

from medsleep.fhir.datatypes import DATETIME


def test_the_datetime_pattern_is_fhir_cores() -> None:
    assert DATETIME.pattern == fhir_types.DateTime.pattern.pattern
