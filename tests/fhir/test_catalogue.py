"""The catalogue by clinical parameter and how a policy resolves every code through it."""

from __future__ import annotations

import pytest

from medsleep.errors import PolicyError
from medsleep.fhir.units import CATALOGUE, MDC, to_canonical
from medsleep.policy import STATISTICAL, load_catalogue, load_policy, parse_policy

POLICY = load_policy()


def test_every_code_means_one_parameter_and_ranges_are_ordered() -> None:
    seen: set[str] = set()
    for p in load_catalogue():
        assert p.codes, p.id
        for _, code in p.codes:
            assert code not in seen
            seen.add(code)
        for rng in (p.plausible, p.reference, p.critical):
            if rng is not None:
                assert rng[0] <= rng[1]
        # A reference interval lies inside what is plausible.
        if p.plausible and p.reference:
            assert p.plausible[0] <= p.reference[0] <= p.reference[1] <= p.plausible[1]


@pytest.mark.parametrize(
    ("code", "parameter"),
    [
        ("8889-8", "heart_rate"),  # pulse rate by oximetry
        ("149530", "heart_rate"),  # MDC_PULS_OXIM_PULS_RATE
        ("147842", "heart_rate"),  # MDC_ECG_HEART_RATE
        ("8331-1", "temperature"),  # oral temperature
        ("150456", "spo2"),  # MDC_PULS_OXIM_SAT_O2
        ("151562", "respiratory_rate"),  # MDC_RESP_RATE
        ("150021", "systolic"),  # MDC_PRESS_BLD_NONINV_SYS
        ("8478-0", "mean_pressure"),
    ],
)
def test_every_code_of_a_parameter_gets_its_rules(code: str, parameter: str) -> None:
    cp = POLICY.for_code(code)
    assert cp is not None
    assert cp.parameter == parameter
    assert cp.clinical
    first = next(p for p in load_catalogue() if p.id == parameter).codes[0][1]
    assert cp.bands == POLICY.codes[first].bands
    assert cp.detector == POLICY.codes[first].detector


def test_pulse_rate_scores_as_the_news2_pulse() -> None:
    # 149/min by oximetry was collapsed as normal when only 8867-4 had bands.
    cp = POLICY.for_code("8889-8")
    assert cp is not None
    assert cp.news2_score(149.0) == 3
    assert cp.news2_parameter == POLICY.codes["8867-4"].news2_parameter == "pulse"


def test_mdc_codes_carry_their_system_and_convert_units() -> None:
    assert CATALOGUE["150364"].system == MDC
    value, unit = to_canonical("150364", 98.6, "[degF]")
    assert (round(value, 1), unit) == (37.0, "Cel")


def test_a_code_nobody_knows_is_judged_statistically() -> None:
    cp = POLICY.rules_for("local-code-42")
    assert cp.parameter == STATISTICAL
    assert not cp.clinical
    assert cp.detector == "ECOD"
    assert POLICY.for_code("local-code-42") is None


def test_parameter_tables_change_every_code_and_code_tables_one() -> None:
    policy = parse_policy(
        {
            "parameters": {"heart_rate": {"contamination": 0.2}},
            "codes": {"8889-8": {"detector": ""}, "x-1": {"unit": "mg", "critical": [1, 2]}},
        }
    )
    assert policy.codes["8867-4"].contamination == 0.2
    assert policy.codes["147842"].contamination == 0.2
    assert policy.codes["8889-8"].detector == ""
    assert policy.codes["8889-8"].bands == policy.codes["8867-4"].bands
    assert policy.codes["x-1"].critical == (1.0, 2.0)
    assert policy.codes["x-1"].clinical


@pytest.mark.parametrize(
    "data",
    [
        {"parameters": {"no_such_parameter": {}}},
        {"parameters": {"heart_rate": {"bandz": []}}},
        {"codes": {"8867-4": {"plausable": [1, 2]}}},
        {"statistical": {"detecter": "ECOD"}},
    ],
)
def test_misspelt_tables_are_policy_errors(data: dict[str, object]) -> None:
    with pytest.raises(PolicyError):
        parse_policy(data)


def test_every_vital_sign_has_a_rate_limit_and_labs_have_none() -> None:
    for p in load_catalogue():
        limited = p.max_step < float("inf") and p.max_rate < float("inf")
        assert limited == (p.kind == "vital"), p.id
    hr = load_policy().rules_for("8889-8")  # pulse rate by oximetry: heart rate's limits
    assert (hr.max_step, hr.max_rate) == (120.0, 0.5)


def test_a_policy_changes_a_parameters_rate_limit_and_refuses_a_negative_one() -> None:
    policy = parse_policy({"parameters": {"spo2": {"max_step": 8, "max_rate": 1}}})
    assert (policy.rules_for("150456").max_step, policy.rules_for("150456").max_rate) == (8, 1)
    with pytest.raises(PolicyError, match="max_rate must not be negative"):
        parse_policy({"codes": {"8867-4": {"max_rate": -1}}})
