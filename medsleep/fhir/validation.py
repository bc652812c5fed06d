"""Whole-resource validation with fhir.resources models, reported as one line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def model_error(model: Any, resource: Mapping[str, Any]) -> str | None:
    """None when ``resource`` validates against ``model``; else its first error, in one line."""
    from pydantic import ValidationError

    try:
        model.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')} ({exc.error_count()} error(s))"
    return None
