"""The FHIR version medsleep speaks and its OperationOutcome, shared by export and the server."""

from __future__ import annotations

from typing import Any, Final

FHIR_VERSION: Final = "4.0.1"


def issue(
    severity: str, code: str, diagnostics: str, expression: str | None = None
) -> dict[str, Any]:
    """One ``OperationOutcome.issue``."""
    found: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression is not None:
        found["expression"] = [expression]
    return found


def operation_outcome(issues: list[dict[str, Any]], rid: str | None = None) -> dict[str, Any]:
    """An OperationOutcome of ``issues`` (with an ``id`` when it is stored, as in an export)."""
    outcome: dict[str, Any] = {"resourceType": "OperationOutcome"}
    if rid is not None:
        outcome["id"] = rid
    outcome["issue"] = issues
    return outcome
