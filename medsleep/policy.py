"""The policy file: what to keep, how to summarise, when to sleep, how long to retain.

A policy is TOML (see ``default_policy.toml`` shipped in the package) loaded into frozen
dataclasses. ``Policy.digest`` is a sha256 of its canonical form, recorded on every run.

Rules apply per clinical parameter: the catalogue (``fhir/catalogue.toml``) lists every code
that means a parameter, with its NEWS2 bands and ranges; a policy's ``[parameters.ID]`` tables
change a parameter for all its codes and ``[codes."CODE"]`` tables change one code. A code in
no catalogue is still judged, statistically only (``[statistical]``).
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, replace
from datetime import time
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from medsleep.errors import PolicyError

DEFAULT_POLICY_NAME = "default_policy.toml"
CATALOGUE_PATH = "fhir/catalogue.toml"
LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
STATISTICAL = "statistical"
"""``CodePolicy.parameter`` of a code no catalogue or policy table knows."""


@dataclass(frozen=True)
class Parameter:
    """One clinical parameter of the catalogue and every code that means it."""

    id: str
    name: str
    unit: str
    kind: str
    codes: tuple[tuple[str, str], ...]  # (system, code)
    news2: str = ""
    bands: tuple[tuple[float, int], ...] = ()
    plausible: tuple[float, float] | None = None
    reference: tuple[float, float] | None = None
    critical: tuple[float, float] | None = None
    max_step: float = math.inf
    max_rate: float = math.inf


@dataclass(frozen=True)
class CodePolicy:
    """Rules and detector settings for one series code (LOINC, MDC, or any other)."""

    code: str
    name: str
    unit: str
    bands: tuple[tuple[float, int], ...] = ()
    plausible: tuple[float, float] | None = None
    critical: tuple[float, float] | None = None
    # The usual reference interval: readings outside it are kept where a series is too sparse
    # to summarise.
    reference: tuple[float, float] | None = None
    # The largest change between two readings: max_step + max_rate (per second) x the time
    # between them; a faster jump out and back is an artifact (inf: no limit).
    max_step: float = math.inf
    max_rate: float = math.inf
    # The catalogue parameter this code measures; "" for a code only a policy table names,
    # STATISTICAL for a code nobody names (judged by its own baseline only).
    parameter: str = ""
    detector: str = ""
    contamination: float = 0.01
    # A detector flag counts only this many robust SDs (MAD) from the patient's own baseline.
    min_deviation_z: float = 4.0
    # Codes measuring the same NEWS2 parameter (e.g. two SpO2 codes) share a name here and
    # count once in the aggregate; "" means the code is its own parameter.
    news2_parameter: str = ""

    @property
    def clinical(self) -> bool:
        """True when clinical rules (catalogue or policy) apply, not statistics alone."""
        return self.parameter != STATISTICAL

    def news2_score(self, value: float) -> int | None:
        """NEWS2 sub-score of ``value``, or None when this code has no bands."""
        for upper, score in self.bands:
            if value <= upper:
                return score
        return None if not self.bands else self.bands[-1][1]


@dataclass(frozen=True)
class MultivariatePolicy:
    detector: str = "ECOD"
    # Its inputs: catalogue parameters (any code that means one: LOINC or a monitor's MDC code;
    # one series each), then codes named one by one.
    parameters: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    contamination: float = 0.01
    align_minutes: int = 1
    min_deviation_z: float = 4.0


@dataclass(frozen=True)
class Policy:
    hot_horizon_hours: float = 24
    bucket_minutes: int = 60
    # A summary stands for at least this many readings; sparser normal readings stay raw.
    min_summary_readings: int = 3
    context_minutes: float = 5
    # Context is at most this many readings each side of a kept one (and within context_minutes).
    context_readings: int = 1
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
    # How a code in no catalogue is judged: its own robust baseline and this detector.
    statistical: CodePolicy = field(
        default_factory=lambda: CodePolicy(
            "", "", "", detector="ECOD", contamination=0.05, parameter=STATISTICAL
        )
    )

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON form of this policy."""
        canonical = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def detector_names(self) -> frozenset[str]:
        """Every PyOD detector this policy can run: per code, for uncatalogued codes, and the
        multivariate one ('' where a code has none)."""
        per_code = (c.detector for c in self.codes.values())
        return frozenset((self.multivariate.detector, self.statistical.detector, *per_code)) - {""}

    def for_code(self, code: str) -> CodePolicy | None:
        """The clinical rules of ``code``, or None when no catalogue or policy table names it."""
        return self.codes.get(code)

    def rules_for(self, code: str) -> CodePolicy:
        """The rules ``code`` is judged by: its clinical ones, else the statistical path."""
        found = self.codes.get(code)
        if found is not None:
            return found
        return replace(self.statistical, code=code, name=code)


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


def _bands(raw: Any, what: str) -> tuple[tuple[float, int], ...]:
    bands: list[tuple[float, int]] = []
    for pair in raw:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise PolicyError(f"{what}.bands entries must be [upper, score], got {pair!r}")
        bands.append((float(pair[0]), int(pair[1])))
    uppers = [upper for upper, _ in bands]
    if uppers != sorted(uppers) or (bands and not math.isinf(uppers[-1])):
        raise PolicyError(f"{what}.bands must ascend and end with inf")
    return tuple(bands)


_CODE_KEYS = frozenset(
    {
        "name", "unit", "bands", "plausible", "critical", "reference", "detector",
        "contamination", "min_deviation_z", "news2_parameter", "max_step", "max_rate",
    }
)  # fmt: skip


def _code_policy(code: str, table: dict[str, Any], base: CodePolicy | None = None) -> CodePolicy:
    """``base`` (or an empty policy for ``code``) with the keys ``table`` sets."""
    what = f"parameters.{base.parameter}" if base is not None and not code else f"codes.{code}"
    unknown = set(table) - _CODE_KEYS
    if unknown:
        raise PolicyError(f"{what}: unknown setting(s) {', '.join(sorted(unknown))}")
    cp = base or CodePolicy(code=code, name=code, unit="")
    changes: dict[str, Any] = {"code": code}
    for key in ("name", "unit", "detector", "news2_parameter"):
        if key in table:
            changes[key] = str(table[key])
    for key in ("contamination", "min_deviation_z", "max_step", "max_rate"):
        if key in table:
            changes[key] = float(table[key])
    for key in ("max_step", "max_rate"):
        if changes.get(key, 0.0) < 0:
            raise PolicyError(f"{what}.{key} must not be negative")
    if "bands" in table:
        changes["bands"] = _bands(table["bands"], what)
    for key in ("plausible", "critical", "reference"):
        if key in table:
            changes[key] = _range(table[key], f"{what}.{key}")
    return replace(cp, **changes)


@cache
def load_catalogue() -> tuple[Parameter, ...]:
    """The parameters of the shipped catalogue (``fhir/catalogue.toml``)."""
    text = resources.files("medsleep").joinpath(CATALOGUE_PATH).read_text()
    parameters = []
    seen: dict[str, str] = {}
    for pid, table in tomllib.loads(text)["parameter"].items():
        codes = tuple((LOINC, str(c)) for c in table.get("loinc", ())) + tuple(
            (MDC, str(c)) for c in table.get("mdc", ())
        )
        for _, code in codes:
            if code in seen:
                raise PolicyError(f"catalogue: {code} is in both {seen[code]} and {pid}")
            seen[code] = pid
        parameters.append(
            Parameter(
                id=pid,
                name=str(table["name"]),
                unit=str(table["unit"]),
                kind=str(table["kind"]),
                codes=codes,
                news2=str(table.get("news2", "")),
                bands=_bands(table.get("bands", []), f"catalogue {pid}"),
                plausible=_range(table.get("plausible"), f"catalogue {pid}.plausible"),
                reference=_range(table.get("reference"), f"catalogue {pid}.reference"),
                critical=_range(table.get("critical"), f"catalogue {pid}.critical"),
                max_step=float(table.get("max_step", math.inf)),
                max_rate=float(table.get("max_rate", math.inf)),
            )
        )
    return tuple(parameters)


def _resolved_codes(parameters: dict[str, Any], codes: dict[str, Any]) -> dict[str, CodePolicy]:
    """Every catalogued code with its parameter's rules and the policy's changes to them,
    then the codes only the policy names."""
    catalogue = load_catalogue()
    known = {p.id for p in catalogue}
    unknown = set(parameters) - known
    if unknown:
        raise PolicyError(f"parameters: not in the catalogue: {', '.join(sorted(unknown))}")
    resolved: dict[str, CodePolicy] = {}
    for p in catalogue:
        base = CodePolicy(
            code="",
            name=p.name,
            unit=p.unit,
            bands=p.bands,
            plausible=p.plausible,
            critical=p.critical,
            reference=p.reference,
            max_step=p.max_step,
            max_rate=p.max_rate,
            news2_parameter=p.news2,
            parameter=p.id,
        )
        base = _code_policy("", parameters.get(p.id, {}), base)
        for _, code in p.codes:
            resolved[code] = replace(base, code=code)
    for code, table in codes.items():
        resolved[str(code)] = _code_policy(str(code), table, resolved.get(str(code)))
    return resolved


def _statistical(table: dict[str, Any]) -> CodePolicy:
    unknown = set(table) - {"detector", "contamination", "min_deviation_z"}
    if unknown:
        raise PolicyError(f"statistical: unknown setting(s) {', '.join(sorted(unknown))}")
    return CodePolicy(
        "",
        "",
        "",
        detector=str(table.get("detector", "ECOD")),
        contamination=float(table.get("contamination", 0.05)),
        min_deviation_z=float(table.get("min_deviation_z", 4.0)),
        parameter=STATISTICAL,
    )


def _multivariate_parameters(raw: Any) -> tuple[str, ...]:
    names = tuple(str(p) for p in raw)
    unknown = set(names) - {p.id for p in load_catalogue()}
    if unknown:
        raise PolicyError(
            f"multivariate.parameters: not in the catalogue: {', '.join(sorted(unknown))}"
        )
    return names


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
            min_summary_readings=int(cons.get("min_summary_readings", 3)),
            context_minutes=float(cons.get("context_minutes", 5)),
            context_readings=int(cons.get("context_readings", 1)),
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
                parameters=_multivariate_parameters(multi.get("parameters", ())),
                codes=tuple(str(c) for c in multi.get("codes", ())),
                contamination=float(multi.get("contamination", 0.01)),
                align_minutes=int(multi.get("align_minutes", 1)),
                min_deviation_z=float(multi.get("min_deviation_z", 4.0)),
            ),
            codes=_resolved_codes(data.get("parameters", {}), data.get("codes", {})),
            statistical=_statistical(data.get("statistical", {})),
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
