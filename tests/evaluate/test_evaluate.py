"""medsleep.evaluate: the scoring rules of the real-labelled README and the three peers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from medsleep.evaluate import (
    Labels,
    hourly_downsample,
    news2_rules,
    score_labelled,
    swinging_door,
    swinging_door_matched,
)
from medsleep.policy import load_policy

MINUTE = 60_000


def frame(code: str, values: list[float]) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "patient": "p",
            "code": code,
            "t": np.arange(n, dtype=np.int64) * MINUTE,
            "value": np.asarray(values, dtype=np.float64),
            "resource_key": [f"Observation/r{i}" for i in range(n)],
        }
    )


def test_a_panel_resource_counts_once_and_either_reading_keeps_it() -> None:
    keys = ["Observation/bp1", "Observation/bp1", "Observation/hr1"]
    labels = Labels(frozenset({"bp1", "hr1"}))
    score = score_labelled(keys, np.array([False, True, False]), 0, labels)
    assert (score.labelled, score.labelled_kept, score.recall) == (2, 1, 0.5)
    assert score.compression == 3.0


def test_an_event_is_caught_by_one_kept_reading() -> None:
    labels = Labels(frozenset({"a", "b", "c"}), event=True)
    keys = ["Observation/a", "Observation/b", "Observation/c", "Observation/d"]
    assert score_labelled(keys, np.array([False, True, False, False]), 1, labels).recall == 1.0
    assert score_labelled(keys, np.array([False, False, False, True]), 1, labels).recall == 0.0


def test_labels_read_the_fixture_format() -> None:
    labels = Labels.from_json({"anomalous_ids": ["x", "y"], "event": True, "resources": 9})
    assert labels == Labels(frozenset({"x", "y"}), event=True)


@given(st.lists(st.floats(min_value=-50, max_value=50), min_size=1, max_size=200))
@settings(deadline=None, max_examples=50)
def test_swinging_door_keeps_both_ends_and_drops_a_straight_line(values: list[float]) -> None:
    v = np.asarray(values)
    t = np.arange(v.size, dtype=np.int64)
    kept = swinging_door(t, v, 1.0)
    assert kept[0]
    assert kept[-1]
    line = swinging_door(t, 2.0 * t + v[0], 0.5)
    assert int(line.sum()) == min(2, v.size)


def test_matched_swinging_door_compresses_at_least_the_target() -> None:
    rng = np.random.default_rng(1)
    f = frame("8867-4", list(70 + rng.normal(0, 3, 600)))
    peer = swinging_door_matched(f, 10.0)
    assert len(f) / peer.kept.sum() >= 10.0


def test_rules_peer_keeps_score_three_and_downsampling_keeps_nothing() -> None:
    f = frame("8867-4", [70.0] * 59 + [150.0])
    rules = news2_rules(f, load_policy())
    assert rules.kept.tolist() == [False] * 59 + [True]
    down = hourly_downsample(f)
    assert not down.kept.any()
    assert down.summaries == 1
