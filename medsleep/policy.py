"""The policy file: what to keep, how to summarise, when to sleep, how long to retain.

A policy is TOML (see ``default_policy.toml`` shipped in the package) loaded into frozen
dataclasses. ``Policy.digest`` is a sha256 of its canonical form, recorded on every run.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Any

from medsleep.errors import PolicyError

DEFAULT_POLICY_NAME = "default_policy.toml"


@dataclass(frozen=True)
class CodePolicy:
    """Rules and detector settings for one series code (LOINC)."""

    code: str
    name: str
    unit: str
    bands: tuple[tuple[float, int], ...] = ()
    plausible: tuple[float, float] | None = None
    critical: tuple[float, float] | None = None
    detector: str = ""
    contamination: float = 0.01
    # A detector flag counts only this many robust SDs (MAD) from the patient's own baseline.
    min_deviation_z: float = 4.0
    # Codes measuring the same NEWS2 parameter (e.g. two SpO2 codes) share a name here and
    # count once in the aggregate; "" means the code is its own parameter.
    news2_parameter: str = ""

    def news2_score(self, value: float) -> int | None:
        """NEWS2 sub-score of ``value``, or None when this code has no bands."""
        for upper, score in self.bands:
            if value <= upper:
                return score
        return None if not self.bands else self.bands[-1][1]


@dataclass(frozen=True)
class MultivariatePolicy:
    detector: str = "ECOD"
    codes: tuple[str, ...] = ()
    contamination: float = 0.01
    align_minutes: int = 1
    min_deviation_z: float = 4.0


@dataclass(frozen=True)
class Policy:
    hot_horizon_hours: float = 24
    bucket_minutes: int = 60
    context_minutes: float = 5
    episode_gap_minutes: float = 15
    transition_dwell: int = 3
    # A band change must also last this many minutes (0: the reading count alone decides).
    transition_dwell_minutes: float = 0
    artifact_run_min: int = 3
    quiet_start: time = time(1, 0)
    quiet_end: time = time(5, 0)
    timezone: str = "UTC"
    min_backlog: int = 1
    archive_years: float = 7
    multivariate: MultivariatePolicy = field(default_factory=MultivariatePolicy)
    codes: dict[str, CodePolicy] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON form of this policy."""
        canonical = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def for_code(self, code: str) -> CodePolicy | None:
        return self.codes.get(code)


def _parse_quiet_hours(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError as exc:
        raise PolicyError(f"quiet_hours must look like '01:00-05:00', got {text!r}") from exc
    return start, end


def _range(value: Any, what: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2):
        raise PolicyError(f"{what} must be [low, high], got {value!r}")
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise PolicyError(f"{what}: low {low} is above high {high}")
    return low, high


def _code_policy(code: str, table: dict[str, Any]) -> CodePolicy:
    bands_raw = table.get("bands", [])
    bands: list[tuple[float, int]] = []
    for pair in bands_raw:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise PolicyError(f"codes.{code}.bands entries must be [upper, score], got {pair!r}")
        bands.append((float(pair[0]), int(pair[1])))
    uppers = [upper for upper, _ in bands]
    if uppers != sorted(uppers) or (bands and not math.isinf(uppers[-1])):
        raise PolicyError(f"codes.{code}.bands must ascend and end with inf")
    return CodePolicy(
        code=code,
        name=str(table.get("name", code)),
        unit=str(table.get("unit", "")),
        bands=tuple(bands),
        plausible=_range(table.get("plausible"), f"codes.{code}.plausible"),
        critical=_range(table.get("critical"), f"codes.{code}.critical"),
        detector=str(table.get("detector", "")),
        contamination=float(table.get("contamination", 0.01)),
        min_deviation_z=float(table.get("min_deviation_z", 4.0)),
        news2_parameter=str(table.get("news2_parameter", "")),
    )


def parse_policy(data: dict[str, Any]) -> Policy:
    """Build a Policy from parsed TOML, checking every field."""
    try:
        cons = data.get("consolidation", {})
        sched = data.get("schedule", {})
        keep = data.get("retention", {})
        multi = data.get("multivariate", {})
        quiet_start, quiet_end = _parse_quiet_hours(sched.get("quiet_hours", "01:00-05:00"))
        policy = Policy(
            hot_horizon_hours=float(cons.get("hot_horizon_hours", 24)),
            bucket_minutes=int(cons.get("bucket_minutes", 60)),
            context_minutes=float(cons.get("context_minutes", 5)),
            episode_gap_minutes=float(cons.get("episode_gap_minutes", 15)),
            transition_dwell=int(cons.get("transition_dwell", 3)),
            transition_dwell_minutes=float(cons.get("transition_dwell_minutes", 0)),
            artifact_run_min=int(cons.get("artifact_run_min", 3)),
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            timezone=str(sched.get("timezone", "UTC")),
            min_backlog=int(sched.get("min_backlog", 1)),
            archive_years=float(keep.get("archive_years", 7)),
            multivariate=MultivariatePolicy(
                detector=str(multi.get("detector", "ECOD")),
                codes=tuple(str(c) for c in multi.get("codes", ())),
                contamination=float(multi.get("contamination", 0.01)),
                align_minutes=int(multi.get("align_minutes", 1)),
                min_deviation_z=float(multi.get("min_deviation_z", 4.0)),
            ),
            codes={
                str(code): _code_policy(str(code), table)
                for code, table in data.get("codes", {}).items()
            },
        )
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"invalid policy: {exc}") from exc
    if policy.bucket_minutes <= 0 or (24 * 60) % policy.bucket_minutes:
        raise PolicyError("bucket_minutes must divide a day (e.g. 15, 30, 60, 120)")
    return policy


def load_policy(path: Path | None = None) -> Policy:
    """Load the policy at ``path``, or the shipped default when ``path`` is None."""
    try:
        if path is None:
            text = resources.files("medsleep").joinpath(DEFAULT_POLICY_NAME).read_text()
        else:
            text = Path(path).read_text()
        return parse_policy(tomllib.loads(text))
    except OSError as exc:
        raise PolicyError(f"cannot read policy {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy {path or DEFAULT_POLICY_NAME} is not valid TOML: {exc}") from exc
