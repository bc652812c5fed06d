"""collapse_normal_runs: every reading in exactly one summary, with numpy's statistics."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsleep.consolidate.summarize import (
    ARTIFACT_BAND,
    SUMMARY_COLUMNS,
    Collapsed,
    bucket_start_ms,
    collapse_normal_runs,
    summary_stats,
    touched_buckets,
)

HOUR_MS = 3_600_000
KEY = ["patient", "code", "unit", "band", "bucket_start_ms"]


def readings(rows: list[tuple[int, str, str, str, str, int, float]]) -> pd.DataFrame:
    """A frame of (id, patient, code, unit, band, t, value) tuples with the input dtypes."""
    frame = pd.DataFrame(rows, columns=["id", "patient", "code", "unit", "band", "t", "value"])
    return frame.astype(
        {
            "id": "int64",
            "patient": "str",
            "code": "str",
            "unit": "str",
            "band": "str",
            "t": "int64",
            "value": "float64",
        }
    )


@st.composite
def reading_frames(draw: st.DrawFn, max_rows: int = 60) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=max_rows))
    ids = draw(
        st.lists(
            st.integers(min_value=-(2**62), max_value=2**62), min_size=n, max_size=n, unique=True
        )
    )
    # A few distinct times make same-millisecond ties common; the wide range covers pre-1970.
    times = st.one_of(
        st.sampled_from([-1, 0, 1, HOUR_MS - 1, HOUR_MS, 5 * HOUR_MS + 17]),
        st.integers(min_value=-3 * HOUR_MS, max_value=6 * HOUR_MS),
    )
    values = st.one_of(
        st.sampled_from([0.0, -0.0, 97.5, 36.6]),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    )
    rows = [
        (
            ids[i],
            draw(st.sampled_from(["p1", "p2", "Zoë-π"])),
            draw(st.sampled_from(["8867-4", "59408-5"])),
            draw(st.sampled_from(["/min", "%"])),
            draw(st.sampled_from(["news2-0", "news2-1", ARTIFACT_BAND, ""])),
            draw(times),
            draw(values),
        )
        for i in range(n)
    ]
    return readings(rows)


bucket_sizes = st.sampled_from([1, 5, 15, 60, 120, 1440])


def check_against_numpy(frame: pd.DataFrame, out: Collapsed, bucket_minutes: int) -> None:
    """Every invariant the nightly job relies on, recomputed naively row group by row group."""
    summaries, index = out.summaries, out.summary_index
    width = bucket_minutes * 60_000
    assert list(summaries.columns) == list(SUMMARY_COLUMNS)
    assert index.dtype == np.int64
    assert index.shape == (len(frame),)
    assert int(summaries["n"].sum()) == len(frame)
    if len(frame):
        assert index.min() >= 0
        assert index.max() < len(summaries)
    assert np.array_equal(np.bincount(index, minlength=len(summaries)), summaries["n"])
    # One summary per cell: readings with different bands (or series) never share a summary.
    assert not summaries.duplicated(KEY).any()
    assert summaries[KEY].equals(summaries[KEY].sort_values(KEY).reset_index(drop=True))

    for k, summary in enumerate(summaries.itertuples(index=False)):
        rows = frame[index == k]
        for name in ("patient", "code", "unit", "band"):
            assert set(rows[name]) == {getattr(summary, name)}
        start, end = summary.bucket_start_ms, summary.bucket_end_ms
        assert start % width == 0
        assert end - start == width
        assert ((rows["t"] >= start) & (rows["t"] < end)).all()

        ordered = rows.sort_values(["t", "id"])
        v = rows["value"].to_numpy()
        scale = max(1.0, float(np.abs(v).max()))
        assert summary.n == len(rows)
        assert summary.min == v.min()
        assert summary.max == v.max()
        assert math.isclose(summary.mean, np.mean(v), rel_tol=1e-9, abs_tol=1e-9 * scale)
        expected_std = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
        assert math.isclose(summary.std, expected_std, rel_tol=1e-7, abs_tol=1e-9 * scale)
        assert summary.median == np.median(v)
        assert summary.first_ms == ordered["t"].iloc[0]
        assert summary.first_value == ordered["value"].iloc[0]
        assert summary.last_ms == ordered["t"].iloc[-1]
        assert summary.last_value == ordered["value"].iloc[-1]
        if summary.band == ARTIFACT_BAND:
            assert json.loads(summary.values_json) == ordered["value"].tolist()
        else:
            assert summary.values_json is None


@settings(max_examples=200, deadline=None)
@given(frame=reading_frames(), bucket_minutes=bucket_sizes)
def test_summaries_match_numpy_on_the_rows_they_hold(
    frame: pd.DataFrame, bucket_minutes: int
) -> None:
    check_against_numpy(frame, collapse_normal_runs(frame, bucket_minutes), bucket_minutes)


@settings(max_examples=100, deadline=None)
@given(frame=reading_frames(), bucket_minutes=bucket_sizes, data=st.data())
def test_input_order_does_not_change_the_result(
    frame: pd.DataFrame, bucket_minutes: int, data: st.DataObject
) -> None:
    permutation = np.array(data.draw(st.permutations(range(len(frame)))), dtype=np.int64)
    shuffled = frame.iloc[permutation].reset_index(drop=True)

    original = collapse_normal_runs(frame, bucket_minutes)
    reordered = collapse_normal_runs(shuffled, bucket_minutes)

    pd.testing.assert_frame_equal(reordered.summaries, original.summaries, check_exact=True)
    assert np.array_equal(reordered.summary_index, original.summary_index[permutation])


@settings(max_examples=100, deadline=None)
@given(frame=reading_frames(), bucket_minutes=bucket_sizes, data=st.data())
def test_late_readings_merge_by_recollapsing_touched_buckets(
    frame: pd.DataFrame, bucket_minutes: int, data: st.DataObject
) -> None:
    """The documented late-data path gives what collapsing everything at once gives."""
    late_mask = np.array(
        data.draw(st.lists(st.booleans(), min_size=len(frame), max_size=len(frame)))
    )
    old, late = frame[~late_mask], frame[late_mask]
    full = collapse_normal_runs(frame, bucket_minutes).summaries
    stored = collapse_normal_runs(old, bucket_minutes).summaries

    cells = touched_buckets(late, bucket_minutes)
    cell_key = ["patient", "code", "unit", "bucket_start_ms"]
    old_cells = old.assign(bucket_start_ms=bucket_start_ms(old["t"], bucket_minutes))
    in_touched = old_cells.merge(cells, on=cell_key, how="left", indicator=True)["_merge"].eq(
        "both"
    )
    restored = old[in_touched.to_numpy()]  # what the caller restores from the archive
    redone = collapse_normal_runs(pd.concat([restored, late]), bucket_minutes).summaries

    kept = stored.merge(cells, on=cell_key, how="left", indicator=True)
    kept = stored[kept["_merge"].eq("left_only").to_numpy()]
    merged = pd.concat([kept, redone]).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, full, check_exact=False, rtol=1e-9, atol=1e-6)


def test_docstring_example() -> None:
    frame = readings(
        [
            (1, "p", "8867-4", "/min", "news2-0", 0, 70.0),
            (2, "p", "8867-4", "/min", "news2-0", 60_000, 72.0),
            (3, "p", "8867-4", "/min", "news2-0", HOUR_MS, 71.0),
        ]
    )
    out = collapse_normal_runs(frame, 60)
    assert out.summaries["bucket_start_ms"].tolist() == [0, HOUR_MS]
    assert out.summaries["n"].tolist() == [2, 1]
    assert out.summaries["mean"].tolist() == [71.0, 71.0]
    assert out.summary_index.tolist() == [0, 0, 1]


def test_single_reading_has_zero_std_and_itself_as_every_statistic() -> None:
    out = collapse_normal_runs(readings([(7, "p", "c", "u", "news2-0", 123, 98.5)]), 60)
    row = out.summaries.iloc[0]
    assert row["std"] == 0.0
    assert row[["min", "max", "mean", "median", "first_value", "last_value"]].tolist() == [98.5] * 6
    assert (row["first_ms"], row["last_ms"]) == (123, 123)


def test_no_nan_reaches_the_summaries() -> None:
    frame = readings([(i, "p", "c", "u", "news2-0", i * 1000, 5.0) for i in range(5)])
    numeric = collapse_normal_runs(frame, 60).summaries.select_dtypes("number")
    assert not numeric.isna().any().any()


def test_buckets_are_aligned_to_the_epoch_including_before_1970() -> None:
    assert bucket_start_ms([-1, 0, 59_999, 60_000, 7_199_999], 60).tolist() == [
        -HOUR_MS,
        0,
        0,
        0,
        HOUR_MS,
    ]
    frame = readings([(1, "p", "c", "u", "", -1, 1.0), (2, "p", "c", "u", "", 0, 2.0)])
    summaries = collapse_normal_runs(frame, 60).summaries
    assert summaries["bucket_start_ms"].tolist() == [-HOUR_MS, 0]
    assert summaries["bucket_end_ms"].tolist() == [0, HOUR_MS]


def test_bands_split_a_bucket_and_artifacts_keep_their_values_in_time_order() -> None:
    frame = readings(
        [
            (1, "p", "59408-5", "%", "news2-0", 3_000, 97.0),
            (2, "p", "59408-5", "%", ARTIFACT_BAND, 2_000, 12.0),
            (3, "p", "59408-5", "%", ARTIFACT_BAND, 1_000, 40.5),
            (4, "p", "59408-5", "%", "news2-0", 4_000, 96.0),
        ]
    )
    summaries = collapse_normal_runs(frame, 60).summaries
    assert summaries["band"].tolist() == [ARTIFACT_BAND, "news2-0"]
    assert summaries["n"].tolist() == [2, 2]
    assert summaries["values_json"].tolist() == ["[40.5,12.0]", None]


def test_same_millisecond_ties_break_by_id() -> None:
    frame = readings(
        [
            (20, "p", "c", "u", "news2-0", 500, 2.0),
            (10, "p", "c", "u", "news2-0", 500, 1.0),
            (30, "p", "c", "u", "news2-0", 500, 3.0),
        ]
    )
    row = collapse_normal_runs(frame, 60).summaries.iloc[0]
    assert (row["first_value"], row["last_value"]) == (1.0, 3.0)


def test_output_dtypes() -> None:
    frame = readings([(1, "p", "c", "u", ARTIFACT_BAND, 0, 1.0), (2, "p", "c", "u", "", 0, 2.0)])
    for out in (collapse_normal_runs(frame, 60), collapse_normal_runs(frame.iloc[:0], 60)):
        dtypes = out.summaries.dtypes.astype(str).to_dict()
        assert dtypes == {
            "patient": "str",
            "code": "str",
            "unit": "str",
            "band": "str",
            "bucket_start_ms": "int64",
            "bucket_end_ms": "int64",
            "n": "int64",
            "min": "float64",
            "max": "float64",
            "mean": "float64",
            "std": "float64",
            "median": "float64",
            "first_ms": "int64",
            "first_value": "float64",
            "last_ms": "int64",
            "last_value": "float64",
            "values_json": "object",
        }
        assert out.summary_index.dtype == np.int64


def test_empty_input_gives_empty_summaries() -> None:
    out = collapse_normal_runs(readings([]), 60)
    assert out.summaries.empty
    assert list(out.summaries.columns) == list(SUMMARY_COLUMNS)
    assert out.summary_index.shape == (0,)


def test_extra_columns_and_index_are_ignored() -> None:
    frame = readings([(1, "p", "c", "u", "", 0, 1.0), (2, "p", "c", "u", "", 1, 3.0)])
    frame = frame.assign(resource_json="{}").set_axis([100, 50])
    out = collapse_normal_runs(frame, 60)
    assert out.summaries["mean"].tolist() == [2.0]
    assert out.summary_index.tolist() == [0, 0]


def test_object_columns_work_like_typed_ones() -> None:
    """pd.concat with an empty frame turns every column into object dtype (pandas 3)."""
    frame = readings(
        [(1, "p", "c", "u", "news2-0", 5, 1.5), (2, "p", "c", "u", ARTIFACT_BAND, 9, 2.5)]
    )
    loose = frame.astype(object)
    typed, untyped = collapse_normal_runs(frame, 60), collapse_normal_runs(loose, 60)
    pd.testing.assert_frame_equal(untyped.summaries, typed.summaries, check_exact=True)
    assert np.array_equal(untyped.summary_index, typed.summary_index)


def test_packed_key_overflow_falls_back_to_a_plain_sort() -> None:
    # A 1e12-minute bucket leaves room for only ~150 groups in the packed int64 sort key.
    rng = np.random.default_rng(7)
    rows = [
        (i, f"p{i % 200:03d}", "c", "u", "", int(rng.integers(0, 1000)), float(rng.normal()))
        for i in range(1000)
    ]
    frame = readings(rows)
    out = collapse_normal_runs(frame, 10**12)
    assert len(out.summaries) == 200
    check_against_numpy(frame, out, 10**12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="band"), "lacks columns"),
        (lambda f: f.assign(value=[1.0, np.nan]), "finite"),
        (lambda f: f.assign(value=[1.0, np.inf]), "finite"),
        (lambda f: f.assign(id=[5, 5]), "repeats"),
        (lambda f: f.assign(band=pd.Series(["", None], dtype=object)), "'band' has missing"),
        (lambda f: f.assign(t=pd.array([1, None], dtype="Int64")), "'t' has missing"),
    ],
)
def test_bad_input_is_refused(change: object, message: str) -> None:
    frame = readings([(1, "p", "c", "u", "", 0, 1.0), (2, "p", "c", "u", "", 1, 3.0)])
    assert callable(change)
    with pytest.raises(ValueError, match=message):
        collapse_normal_runs(change(frame), 60)


@pytest.mark.parametrize("bucket_minutes", [0, -15, 1.5, True])
def test_bucket_minutes_must_be_a_positive_int(bucket_minutes: object) -> None:
    frame = readings([(1, "p", "c", "u", "", 0, 1.0)])
    with pytest.raises(ValueError, match="bucket_minutes"):
        collapse_normal_runs(frame, bucket_minutes)  # type: ignore[arg-type]


def test_summary_stats_agrees_with_collapse() -> None:
    rng = np.random.default_rng(3)
    t = rng.integers(0, HOUR_MS, 500)
    v = rng.normal(80, 7, 500)
    ids = rng.permutation(500)
    frame = pd.DataFrame(
        {"id": ids, "patient": "p", "code": "c", "unit": "u", "band": "", "t": t, "value": v}
    )
    row = collapse_normal_runs(frame, 60).summaries.iloc[0]
    stats = summary_stats(v, t, ids)
    assert stats.n == row["n"]
    assert (stats.min, stats.max, stats.median) == (row["min"], row["max"], row["median"])
    assert stats.mean == pytest.approx(row["mean"], rel=1e-12)
    assert stats.std == pytest.approx(row["std"], rel=1e-9)
    assert (stats.first_ms, stats.first_value) == (row["first_ms"], row["first_value"])
    assert (stats.last_ms, stats.last_value) == (row["last_ms"], row["last_value"])


def test_summary_stats_of_one_value_and_of_nothing() -> None:
    assert summary_stats([4.0], [9]).std == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        summary_stats([], [])


def test_touched_buckets_lists_each_cell_once() -> None:
    frame = readings(
        [
            (1, "p", "c", "u", "news2-0", 10, 1.0),
            (2, "p", "c", "u", "news2-1", 20, 1.0),
            (3, "p", "c", "u", "", HOUR_MS + 1, 1.0),
        ]
    )
    cells = touched_buckets(frame, 60)
    assert cells.to_dict("list") == {
        "patient": ["p", "p"],
        "code": ["c", "c"],
        "unit": ["u", "u"],
        "bucket_start_ms": [0, HOUR_MS],
    }


@pytest.mark.slow
def test_five_million_readings_collapse_in_seconds() -> None:
    n = 5_000_000
    rng = np.random.default_rng(1)
    code_index = rng.integers(0, 6, n)
    codes = np.array(["8867-4", "59408-5", "9279-1", "8310-5", "8480-6", "2708-6"], dtype=object)
    units = np.array(["/min", "%", "/min", "Cel", "mm[Hg]", "%"], dtype=object)
    bands = np.array(["news2-0", "news2-1", "news2-2", "news2-3", ARTIFACT_BAND, ""], dtype=object)
    patients = np.array([f"patient-{i:05d}" for i in range(2000)], dtype=object)
    frame = pd.DataFrame(
        {
            "id": rng.permutation(n).astype(np.int64),
            "patient": pd.Series(patients[rng.integers(0, 2000, n)], dtype="str"),
            "code": pd.Series(codes[code_index], dtype="str"),
            "unit": pd.Series(units[code_index], dtype="str"),
            "t": 1_750_000_000_000 + rng.integers(0, 86_400_000, n),
            "value": rng.normal(80, 5, n),
            "band": pd.Series(
                bands[rng.choice(6, n, p=[0.9, 0.04, 0.02, 0.01, 0.001, 0.029])], dtype="str"
            ),
        }
    )
    started = time.perf_counter()
    out = collapse_normal_runs(frame, 60)
    elapsed = time.perf_counter() - started
    print(f"collapse_normal_runs: {n} rows -> {len(out.summaries)} summaries in {elapsed:.2f}s")
    assert int(out.summaries["n"].sum()) == n
    assert elapsed < 30  # a regression guard, not the target (a few seconds on 2 cores)
