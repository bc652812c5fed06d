"""Collapse normal readings into clock-aligned bucket x band summaries.

Pure functions on DataFrames: no database, no files, no clock. The nightly job hands in the
readings it decided *not* to retain; each (patient, code, unit, band) series is cut into buckets of
``bucket_minutes`` aligned to the UTC epoch (like TimescaleDB ``time_bucket``) and every
non-empty cell becomes one summary row.

Conventions
-----------
* ``std`` is the sample standard deviation (``ddof=1``) and is ``0.0`` when ``n == 1`` — never
  NaN, so summaries store in SQLite and PostgreSQL alike and export to JSON without special cases.
* "first"/"last" are by time ``t``, ties broken by ``id``, so the result does not depend on the
  order of the input rows.
* ``values_json`` holds the run's values in time order (compact JSON array) only for the
  ``"artifact"`` band; it is None for every other band.
* Summaries are sorted by (patient, code, unit, band, bucket_start_ms); ``summary_index[i]`` is the
  summary row that input row ``i`` went into.

Late data
---------
A bucket's summaries depend only on the readings in that bucket, so late readings are merged by
recomputation, not by combining statistics: find the buckets the new readings touch
(:func:`touched_buckets`), restore the archived readings of those buckets (every band), concatenate
them with the new readings and call :func:`collapse_normal_runs` again. The result *replaces* the
stored summaries of those (patient, code, unit, bucket) cells in every band. Each reading must
appear once: ``collapse_normal_runs`` raises ValueError on duplicate ``id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from medsleep.consolidate.moments import group_mean_std

ARTIFACT_BAND: Final = "artifact"
MS_PER_MINUTE: Final = 60_000

#: Columns ``collapse_normal_runs`` needs; any others are ignored.
INPUT_COLUMNS: Final = ("id", "patient", "code", "unit", "t", "value", "band")
#: The series key inside a bucket, in output sort order.
KEY_COLUMNS: Final = ("patient", "code", "unit", "band")
SUMMARY_COLUMNS: Final = (
    "patient",
    "code",
    "unit",
    "band",
    "bucket_start_ms",
    "bucket_end_ms",
    "n",
    "min",
    "max",
    "mean",
    "std",
    "median",
    "first_ms",
    "first_value",
    "last_ms",
    "last_value",
    "values_json",
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Collapsed:
    """Summaries of a set of readings and, per input row, the summary it went into."""

    summaries: pd.DataFrame
    summary_index: IntArray


@dataclass(frozen=True)
class SummaryStats:
    """Statistics of one run of readings (one summary row without its key)."""

    n: int
    min: float
    max: float
    mean: float
    std: float
    median: float
    first_ms: int
    first_value: float
    last_ms: int
    last_value: float


def bucket_start_ms(t_ms: npt.ArrayLike, bucket_minutes: int) -> IntArray:
    """Start (epoch ms, UTC) of the clock-aligned bucket holding each time.

    >>> bucket_start_ms([0, 3_599_999, 3_600_000, -1], 60).tolist()
    [0, 0, 3600000, -3600000]
    """
    width = _bucket_width_ms(bucket_minutes)
    t = np.asarray(t_ms, dtype=np.int64)
    # Floor division keeps pre-1970 times in the bucket to their left, as time_bucket does.
    result: IntArray = (t // width) * width
    return result


def touched_buckets(frame: pd.DataFrame, bucket_minutes: int) -> pd.DataFrame:
    """The (patient, code, unit, bucket_start_ms) cells that ``frame``'s readings fall in.

    Use it for late data: these are the cells whose archived readings must be restored and
    collapsed again together with the new readings (all bands of a cell at once).
    """
    _require_columns(frame, ("patient", "code", "unit", "t"))
    cells = pd.DataFrame(
        {
            "patient": frame["patient"].to_numpy(),
            "code": frame["code"].to_numpy(),
            "unit": frame["unit"].to_numpy(),
            "bucket_start_ms": bucket_start_ms(frame["t"].to_numpy(), bucket_minutes),
        }
    )
    cells = cells.drop_duplicates().sort_values(list(cells.columns), kind="stable")
    return cells.reset_index(drop=True).astype(
        {"patient": "str", "code": "str", "unit": "str", "bucket_start_ms": "int64"}
    )


def summary_stats(
    values: npt.ArrayLike, times: npt.ArrayLike, ids: npt.ArrayLike | None = None
) -> SummaryStats:
    """Statistics of one run, with the same conventions as :func:`collapse_normal_runs`.

    >>> s = summary_stats([3.0, 1.0, 2.0], [30, 10, 20])
    >>> (s.n, s.median, s.first_value, s.last_value, s.std)
    (3, 2.0, 1.0, 3.0, 1.0)
    """
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(times, dtype=np.int64)
    if v.ndim != 1 or v.shape != t.shape or v.size == 0:
        raise ValueError("values and times must be non-empty 1-d arrays of equal length")
    i = np.zeros_like(t) if ids is None else np.asarray(ids, dtype=np.int64)
    if i.shape != t.shape:
        raise ValueError("ids must have the same length as times")
    order = np.lexsort((i, t))
    n = int(v.size)
    one = np.zeros(1, dtype=np.int64)
    mean, std = group_mean_std(v, np.zeros(n, dtype=np.int64), one, np.array([n]))
    return SummaryStats(
        n=n,
        min=float(v.min()),
        max=float(v.max()),
        mean=float(mean[0]),
        std=float(std[0]),
        median=float(_group_medians(v, np.zeros(n, dtype=np.int64))[0]),
        first_ms=int(t[order[0]]),
        first_value=float(v[order[0]]),
        last_ms=int(t[order[-1]]),
        last_value=float(v[order[-1]]),
    )


def collapse_normal_runs(frame: pd.DataFrame, bucket_minutes: int) -> Collapsed:
    """Collapse readings into one summary per bucket and (patient, code, unit, band).

    ``frame`` needs the columns ``id`` (unique int), ``patient``, ``code``, ``unit``, ``band``
    (non-null str; ``""`` for no band), ``t`` (epoch ms, UTC) and ``value`` (finite float).
    Raises ValueError when a column is missing, a key is null, a value is not finite or an id
    repeats. Fully vectorised: two sorts and a handful of ``reduceat`` passes.

    >>> frame = pd.DataFrame({"id": [1, 2, 3], "patient": "p", "code": "8867-4",
    ...     "unit": "/min", "band": "news2-0", "t": [0, 60_000, 3_600_000],
    ...     "value": [70.0, 72.0, 71.0]})
    >>> out = collapse_normal_runs(frame, 60)
    >>> out.summaries[["bucket_start_ms", "n", "mean"]].to_numpy().tolist()
    [[0.0, 2.0, 71.0], [3600000.0, 1.0, 71.0]]
    >>> out.summary_index.tolist()
    [0, 0, 1]
    """
    width = _bucket_width_ms(bucket_minutes)
    _require_columns(frame, INPUT_COLUMNS)
    if len(frame) == 0:
        return Collapsed(_empty_summaries(), np.empty(0, dtype=np.int64))

    ids = _int64_column(frame, "id")
    _reject_duplicate_ids(ids)
    t = _int64_column(frame, "t")
    values = frame["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all():
        raise ValueError("column 'value' must be finite (no NaN or infinity)")
    buckets = (t // width) * width

    # One dense group number per (patient, code, unit, band, bucket), numbered in that sort order.
    group, levels = _group_numbers(frame, buckets)
    order = _time_order(group, t - buckets, ids, width)
    g_sorted = group[order]
    t_sorted = t[order]
    v_sorted = values[order]

    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    counts = ends - starts

    mins = np.minimum.reduceat(v_sorted, starts)
    maxs = np.maximum.reduceat(v_sorted, starts)
    means, stds = group_mean_std(v_sorted, g_sorted, starts, counts)

    medians = _group_medians(v_sorted, g_sorted)

    first_rows = order[starts]
    keys = {
        name: levels[name][1].to_numpy(dtype=object)[levels[name][0][first_rows]]
        for name in KEY_COLUMNS
    }
    values_json = np.full(len(starts), None, dtype=object)
    for k in np.flatnonzero(keys["band"] == ARTIFACT_BAND):
        run = v_sorted[starts[k] : ends[k]].tolist()
        values_json[k] = json.dumps(run, separators=(",", ":"))

    summaries = pd.DataFrame(
        {
            "patient": pd.Series(keys["patient"], dtype="str"),
            "code": pd.Series(keys["code"], dtype="str"),
            "unit": pd.Series(keys["unit"], dtype="str"),
            "band": pd.Series(keys["band"], dtype="str"),
            "bucket_start_ms": buckets[first_rows],
            "bucket_end_ms": buckets[first_rows] + width,
            "n": counts.astype(np.int64),
            "min": mins,
            "max": maxs,
            "mean": means,
            "std": stds,
            "median": medians,
            "first_ms": t_sorted[starts],
            "first_value": v_sorted[starts],
            "last_ms": t_sorted[ends - 1],
            "last_value": v_sorted[ends - 1],
            "values_json": pd.Series(values_json, dtype=object),
        }
    )
    return Collapsed(summaries=summaries, summary_index=group)


def _bucket_width_ms(bucket_minutes: int) -> int:
    if isinstance(bucket_minutes, bool) or not isinstance(bucket_minutes, int | np.integer):
        raise ValueError(f"bucket_minutes must be an int, got {bucket_minutes!r}")
    if bucket_minutes <= 0:
        raise ValueError(f"bucket_minutes must be positive, got {bucket_minutes}")
    return int(bucket_minutes) * MS_PER_MINUTE


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}")


def _int64_column(frame: pd.DataFrame, name: str) -> IntArray:
    column = frame[name]
    if column.isna().any():
        raise ValueError(f"column {name!r} has missing values")
    result: IntArray = column.to_numpy(dtype=np.int64)
    return result


def _group_numbers(
    frame: pd.DataFrame, buckets: IntArray
) -> tuple[IntArray, dict[str, tuple[IntArray, pd.Index]]]:
    """Dense numbers 0..G-1 of the (patient, code, unit, band, bucket) cells, in sorted order.

    Also returns each key column's (codes, sorted uniques). The level codes are packed
    mixed-radix into one int64 (which keeps lexicographic order); the packed key is re-densified
    only when the next level could overflow it, and once at the end.
    """
    limit = np.iinfo(np.int64).max
    levels: dict[str, tuple[IntArray, pd.Index]] = {}
    group = np.zeros(len(buckets), dtype=np.int64)
    radix = 1
    for name in (*KEY_COLUMNS, "bucket"):
        column = pd.Series(buckets) if name == "bucket" else frame[name]
        codes, uniques = pd.factorize(column, sort=True)
        if (codes < 0).any():
            raise ValueError(f"column {name!r} has missing values")
        codes = codes.astype(np.int64)
        levels[name] = (codes, uniques)
        if radix > limit // max(len(uniques), 1):
            group, radix = _densify(group)
        group = group * np.int64(len(uniques)) + codes
        radix *= len(uniques)
    return _densify(group)[0], levels


def _densify(key: IntArray) -> tuple[IntArray, int]:
    codes, uniques = pd.factorize(key, sort=True)
    return codes.astype(np.int64), len(uniques)


def _time_order(group: IntArray, offset: IntArray, ids: IntArray, width: int) -> IntArray:
    """Row order by (group, time, id); ``offset`` is the time since the bucket start."""
    n_groups = int(group.max()) + 1
    if n_groups > np.iinfo(np.int64).max // width:
        # Only reachable with absurd bucket widths: the packed key would overflow.
        fallback: IntArray = np.lexsort((ids, offset, group))
        return fallback
    # One packed int64 key sorts ~5x faster than a three-key lexsort.
    key = group * np.int64(width) + offset
    order: IntArray = np.argsort(key, kind="stable")
    packed = key[order]
    tied = packed[1:] == packed[:-1]
    if tied.any():
        # Same series, same millisecond: re-sort just the tied rows by id so that input order
        # cannot matter. Tie runs are contiguous, so sorting them by (key, id) keeps them in place.
        in_tie = np.zeros(len(order), dtype=bool)
        in_tie[1:] |= tied
        in_tie[:-1] |= tied
        positions = np.flatnonzero(in_tie)
        rows = order[positions]
        order[positions] = rows[np.lexsort((ids[rows], packed[positions]))]
    return order


def _reject_duplicate_ids(ids: IntArray) -> None:
    if not pd.Index(ids).is_unique:
        raise ValueError("column 'id' repeats: each reading must be collapsed exactly once")


def _group_medians(v_sorted: FloatArray, g_sorted: IntArray) -> FloatArray:
    # pandas' grouped median is a Cython selection per group: several times faster than
    # sorting values inside groups with numpy, and the same (a + b) / 2 for even counts.
    with np.errstate(over="ignore"):
        grouped = pd.Series(v_sorted).groupby(g_sorted).median()
    medians: FloatArray = np.array(grouped, dtype=np.float64)
    overflowed = ~np.isfinite(medians)
    if overflowed.any():  # (a + b) / 2 of two huge values: halve first (exact at that size)
        halves = pd.Series(v_sorted / 2).groupby(g_sorted).median()
        medians[overflowed] = np.asarray(halves, dtype=np.float64)[overflowed] * 2
    return medians


def _empty_summaries() -> pd.DataFrame:
    strings = {name: pd.Series([], dtype="str") for name in KEY_COLUMNS}
    ints = {
        name: pd.Series([], dtype="int64")
        for name in ("bucket_start_ms", "bucket_end_ms", "n", "first_ms", "last_ms")
    }
    floats = {
        name: pd.Series([], dtype="float64")
        for name in ("min", "max", "mean", "std", "median", "first_value", "last_value")
    }
    columns = {**strings, **ints, **floats, "values_json": pd.Series([], dtype=object)}
    return pd.DataFrame({name: columns[name] for name in SUMMARY_COLUMNS})
