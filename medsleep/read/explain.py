"""Why a reading was kept, in words: the short form for scripts and exports
(``describe_reason``) and the clinician's sentence on the dashboard (``explain_reason``)."""

from __future__ import annotations

import math
from datetime import tzinfo
from typing import Any

from medsleep.policy import Policy
from medsleep.read.text import band_text, format_value, local_time, short_name


def explain_reason(
    row: Any,
    code: str,
    t_ms: int,
    value: float,
    policy: Policy,
    tz: tzinfo,
    anchor: tuple[str, int, float] | None = None,
) -> str:
    """Why the reading of ``code`` at ``t_ms`` with ``value`` was kept, for a clinician: rule
    and band, detector score vs threshold, or which reading it is the context of.

    ``row`` has the retention columns ``kind``, ``rule``, ``score``, ``threshold``, ``news2``
    and ``context_of``; ``anchor`` is the (code, time, value) of the reading it is context of.

    >>> from types import SimpleNamespace as Row
    >>> from medsleep.policy import load_policy
    >>> from zoneinfo import ZoneInfo
    >>> why = Row(kind="rule", rule="news2-critical", score=86.0, threshold=91.0, news2=3,
    ...           context_of=None)
    >>> explain_reason(why, "59408-5", 0, 86.0, load_policy(), ZoneInfo("UTC"))
    'rule news2-critical: 86 % is in the NEWS2 band ≤ 91 (sub-score 3)'
    >>> wave = Row(kind="detector", rule="waveform-discord", score=28.8, threshold=12.0,
    ...            news2=None, context_of=None)
    >>> print(explain_reason(wave, "local-abp", 0, 71.2, load_policy(), ZoneInfo("UTC")))
    ... # doctest: +NORMALIZE_WHITESPACE
    detector waveform-discord: the wave's shape broke at 71.2; its stretch matches no stretch
    of the cycles around it, 28.8 robust SDs further than usual (needs 12)
    """
    cp = policy.for_code(code)
    unit = cp.unit if cp is not None else ""
    shown = format_value(value, unit)
    score, threshold = _number(row.score), _number(row.threshold)
    if row.kind == "context":
        if anchor is None:
            return f"context of reading {row.context_of}"
        a_code, a_ms, a_value = anchor
        a_unit = policy.codes[a_code].unit if a_code in policy.codes else ""
        minutes = abs(t_ms - a_ms) / 60_000
        side = "before" if t_ms < a_ms else "after"
        return (
            f"context: {minutes:.3g} min {side} {short_name(a_code, policy)} "
            f"{format_value(a_value, a_unit)} at {local_time(a_ms, tz, '%H:%M')} "
            f"(reading {row.context_of})"
        )
    if row.rule in ("news2-critical", "news2-transition") and cp is not None and cp.bands:
        sub = f" (sub-score {int(row.news2)})" if _number(row.news2) is not None else ""
        band = band_text(value, cp.bands)
        if row.rule == "news2-critical":
            return f"rule {row.rule}: {shown} is in the NEWS2 band {band}{sub}"
        return f"rule {row.rule}: {shown} moved into the NEWS2 band {band}{sub} and stayed"
    if row.rule == "critical-lab" and threshold is not None:
        side = "below" if value < threshold else "above"
        return f"rule critical-lab: {shown} {side} the critical limit {format_value(threshold)}"
    if row.kind == "sparse" and score is not None and threshold is not None:
        return (
            f"sparse: {shown} kept raw, its bucket held {score:.0f} reading(s) and a summary "
            f"stands for at least {threshold:.0f}"
        )
    if row.rule == "outside-reference" and threshold is not None:
        side = "below" if value < threshold else "above"
        return (
            f"rule outside-reference: {shown} {side} the reference limit {format_value(threshold)}"
        )
    if row.rule.startswith("statistical"):
        model = row.rule.split(":", 1)[-1]
        return (
            f"statistical {model}: no clinical rule applies to this code; it stands out from "
            f"the patient's own baseline"
            + (f" (score {score:.4g} vs {threshold:.4g})" if score and threshold else "")
        )
    if row.rule == "rhythm-spike" and score is not None and threshold is not None:
        return (
            f"detector rhythm-spike: {shown} stands out from both neighbouring readings by "
            f"{score:.3g} robust SDs of the series' steps (needs {threshold:.3g})"
        )
    if row.rule == "waveform-discord" and score is not None and threshold is not None:
        return (
            f"detector waveform-discord: the wave's shape broke at {shown}; its stretch matches "
            f"no stretch of the cycles around it, {score:.3g} robust SDs further than usual "
            f"(needs {threshold:.3g})"
        )
    if row.rule == "waveform-cycle" and score is not None and threshold is not None:
        return (
            f"detector waveform-cycle: at {shown} a cycle of the wave is much longer or shorter "
            f"than its neighbours (a dropped or a premature beat), {score:.3g} robust SDs "
            f"(needs {threshold:.3g})"
        )
    if row.kind == "artifact":
        limit = (
            f" (plausible {cp.plausible[0]:g}–{cp.plausible[1]:g})" if cp and cp.plausible else ""
        )
        return f"artifact: {shown} is implausible{limit}; kept, not summarised"
    if row.rule.startswith("segment:") and score is not None and threshold is not None:
        return (
            f"detector {row.rule}: part of an abnormal stretch {score:.3g} robust SDs from the "
            f"patient's baseline (needs {threshold:.3g})"
        )
    label = row.rule if ":" in row.rule else f"{row.kind} {row.rule}"
    if row.rule.startswith("multivariate:"):
        names = ", ".join(_multivariate_names(policy))
        label += f" over {names}"
    if score is not None and threshold is not None:
        return f"{label}: score {score:.4g} vs threshold {threshold:.4g}"
    return label


def _multivariate_names(policy: Policy) -> list[str]:
    """Short names of the multivariate detector's inputs: a parameter by its first code."""
    names = []
    for parameter in policy.multivariate.parameters:
        first = next((c for c, cp in policy.codes.items() if cp.parameter == parameter), None)
        names.append(short_name(first, policy) if first else parameter)
    return names + [short_name(c, policy) for c in policy.multivariate.codes]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def describe_reason(row: Any) -> str:
    """One reason as a clinician reads it, e.g. ``detector:ECOD score 12.1 > 9.8``."""
    text = f"{row.kind}:{row.rule}" if not row.rule.startswith(row.kind) else row.rule
    if row.kind == "context" and row.context_of is not None:
        return f"context of reading {row.context_of}"
    if row.news2 is not None and row.kind == "rule":
        text += f" (NEWS2 {row.news2})"
    if row.score is not None and row.threshold is not None:
        text += f" score {row.score:.4g} vs threshold {row.threshold:.4g}"
    return text
