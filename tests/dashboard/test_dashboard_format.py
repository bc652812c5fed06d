"""The dashboard's words: vital names, units, local times, episodes, and why a reading was kept."""

from __future__ import annotations

import re
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medsleep.policy import load_policy
from medsleep.read.explain import explain_reason
from medsleep.read.text import (
    band_text,
    describe_episode,
    describe_worst,
    format_value,
    parameter_name,
    short_name,
)
from medsleep.timefmt import parse_iso_ms

POLICY = load_policy()
ZURICH = ZoneInfo("Europe/Zurich")
T = parse_iso_ms("2026-01-05T01:14:00+00:00")  # 02:14 in Zurich (CET, UTC+1)


def why(kind: str, rule: str, score: float | None = None, threshold: float | None = None,
        news2: int | None = None, context_of: int | None = None) -> SimpleNamespace:  # fmt: skip
    return SimpleNamespace(
        kind=kind, rule=rule, score=score, threshold=threshold, news2=news2, context_of=context_of
    )


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(86.0, "%", "86 %"), (38.55, "Cel", "38.55 °C"), (128.0, "/min", "128 /min"),
     (120.0, "mm[Hg]", "120 mmHg"), (1.5, "", "1.5"), (101.3, "[degF]", "101.3 °F")],
)  # fmt: skip
def test_values_carry_readable_units(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


@pytest.mark.parametrize(
    ("code", "value", "text"),
    [("59408-5", 86.0, "≤ 91"), ("8867-4", 128.0, "> 110 and ≤ 130"), ("8867-4", 131.0, "> 130"),
     ("8867-4", 40.0, "≤ 40"), ("8310-5", 38.5, "> 38 and ≤ 39")],
)  # fmt: skip
def test_band_text_names_the_news2_band(code: str, value: float, text: str) -> None:
    assert band_text(value, POLICY.codes[code].bands) == text


def test_worst_values_say_which_way_they_went() -> None:
    assert describe_worst("59408-5", 86.0, POLICY) == "SpO2 down to 86 %"
    assert describe_worst("8867-4", 128.0, POLICY) == "HR up to 128 /min"
    assert describe_worst("8867-4", 72.0, POLICY) == "HR 72 /min"
    assert describe_worst("2823-3", 6.5, POLICY) == "Potassium up to 6.5 mmol/L"
    assert describe_worst("99999-9", 3.0, POLICY) == "99999-9 3"


def test_episode_reads_like_the_issue_in_local_time() -> None:
    end = T + 17 * 60_000
    text = describe_episode(T, end, {"8867-4": 128.0, "59408-5": 86.0}, 7, POLICY, ZURICH)
    assert text == "02:14–02:31 SpO2 down to 86 %, HR up to 128 /min, NEWS2 7"


def test_news2_parameters_are_named_by_their_codes() -> None:
    assert parameter_name("spo2", POLICY) == "SpO2"
    assert parameter_name("8867-4", POLICY) == "HR"
    assert short_name("8867-4", POLICY) == "HR"
    assert short_name("2823-3", POLICY) == "Potassium"


@pytest.mark.parametrize(
    ("reason", "code", "value", "expected"),
    [
        (why("rule", "news2-critical", 86, 91, 3), "59408-5", 86.0,
         "rule news2-critical: 86 % is in the NEWS2 band ≤ 91 (sub-score 3)"),
        (why("rule", "news2-transition", 112, 110, 2), "8867-4", 112.0,
         "rule news2-transition: 112 /min moved into the NEWS2 band > 110 and ≤ 130 "
         "(sub-score 2) and stayed"),
        (why("rule", "critical-lab", 2.5, 2.8), "2823-3", 2.5,
         "rule critical-lab: 2.5 mmol/L below the critical limit 2.8"),
        (why("detector", "detector:ECOD", 12.13, 9.8), "8867-4", 101.0,
         "detector:ECOD: score 12.13 vs threshold 9.8"),
        (why("detector", "segment:ECOD", 4.2, 3.5), "8867-4", 101.0,
         "detector segment:ECOD: part of an abnormal stretch 4.2 robust SDs from the "
         "patient's baseline (needs 3.5)"),
        (why("detector", "multivariate:ECOD", 20.9, 18.15), "8867-4", 101.0,
         "multivariate:ECOD over HR, RR, SpO2, SBP: score 20.9 vs threshold 18.15"),
        (why("artifact", "implausible", 0, 1), "59408-5", 0.0,
         "artifact: 0 % is implausible (plausible 1–100); kept, not summarised"),
        (why("context", "context", context_of=42), "8867-4", 95.0, "context of reading 42"),
    ],
)  # fmt: skip
def test_reasons_are_explained(
    reason: SimpleNamespace, code: str, value: float, expected: str
) -> None:
    assert explain_reason(reason, code, T, value, POLICY, ZURICH) == expected


def test_context_names_the_reading_it_surrounds() -> None:
    anchor = ("59408-5", T + 120_000, 86.0)
    text = explain_reason(why("context", "context", context_of=7), "59408-5", T, 93.0, POLICY,
                          ZURICH, anchor)  # fmt: skip
    assert text == "context: 2 min before SpO2 86 % at 02:16 (reading 7)"


@given(
    code=st.sampled_from([c for c, cp in POLICY.codes.items() if cp.bands]),
    value=st.floats(min_value=-50, max_value=400, allow_nan=False),
)
def test_band_text_always_contains_the_value(code: str, value: float) -> None:
    text = band_text(value, POLICY.codes[code].bands)
    for op, bound in re.findall(r"(≤|>) (-?[\d.]+)", text):
        assert value <= float(bound) if op == "≤" else value > float(bound)
