"""PyOD detectors behind one small interface: features in, flagged positions + scores out.

A detector is built fresh for every series (PyOD models keep state from a previous fit, and a
refit instance is not the same as a fresh one). ``contamination`` is PyOD's ceiling on the
flagged fraction; on top of it a flag must also pass a magnitude gate: the reading must lie at
least ``min_z`` robust standard deviations (MAD) from the patient's own rolling baseline. A
rank-based model such as ECOD always puts *some* readings over its threshold, even on a
perfectly normal night; the gate keeps those from being retained while letting the ceiling be
generous enough for real events.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from medsleep.detect.rules import BoolArray, FloatArray, IntArray, robust_scale
from medsleep.errors import PolicyError

BASELINE_MINUTES = 720
"""Span of the centred rolling median that is the patient's own baseline. Events up to a few
hours long (a fever, a long tachycardia) stay deviations from it instead of becoming it."""

MIN_BASELINE_READINGS = 15

MIN_DETECTOR_READINGS = 30
"""Series shorter than this are too short to learn a baseline from; no detector runs."""

CONTRIBUTING_Z = 3.0
"""In a multivariate flag, a column contributes when its own deviation z-score reaches this
(the column deviating most always does)."""

RANDOM_STATE = 0
"""Seed for randomised detectors (IForest, ...) so a night's run is reproducible."""

_TABULAR = {
    "ABOD", "CBLOF", "COF", "COPOD", "ECOD", "GMM", "HBOS", "IForest", "INNE", "KDE", "KNN",
    "LMDD", "LODA", "LOF", "MCD", "OCSVM", "PCA", "SOD",
}  # fmt: skip
_UNIVARIATE = {"MAD"}
# Models whose result does not change under a per-column affine rescaling: no need to scale.
_SCALE_FREE = {"COPOD", "ECOD", "HBOS", "IForest", "MAD"}
_TIME_SERIES = {"MatrixProfile", "SpectralResidual", "TimeSeriesOD"}

DETECTOR_NAMES: frozenset[str] = frozenset(_TABULAR | _UNIVARIATE | _TIME_SERIES)
"""Detector names a policy may use (PyOD class names)."""


@dataclass(frozen=True)
class DetectorFlags:
    """What one detector run flagged: positions into its input rows, their scores, threshold."""

    positions: IntArray
    scores: FloatArray
    threshold: float
    columns: BoolArray | None = None
    """For aligned (multivariate) input: which columns of each flagged row contributed."""
    segment: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Rows not flagged themselves but in the same anomalous segment as a flagged one."""
    segment_z: FloatArray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    """Deviation z-score of each ``segment`` row (what put it in the segment)."""

    @classmethod
    def none(cls) -> DetectorFlags:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), float("nan"))


def grow_segments(seeds: IntArray, gate_z: FloatArray, min_z: float) -> IntArray:
    """Rows, other than ``seeds``, in a run of consecutive ``gate_z >= min_z`` holding a seed.

    A rank-based detector flags the most extreme readings of a sustained event (a 3-hour fever,
    a 40-minute tachycardia) but not the plateau around them, whose many similar values mask
    each other. The whole run of readings that stays as far from the baseline as the gate asks
    is the event, so it is kept whole.

    >>> grow_segments(np.array([2]), np.array([5.0, 1.0, 6.0, 5.0, 4.0, 1.0, 5.0]), 3.5)
    array([3, 4])
    """
    if min_z <= 0 or seeds.size == 0:
        return np.empty(0, dtype=np.int64)
    above = gate_z >= min_z
    run_id = np.cumsum(above & ~np.concatenate(([False], above[:-1])))
    member = above & np.isin(run_id, run_id[seeds])
    member[seeds] = False
    grown: IntArray = np.flatnonzero(member).astype(np.int64)
    return grown


SUSTAINED_MINUTES = 2.0
"""A run of readings this long (in time), every one as far from the baseline as the gate asks,
is an event whether or not the detector flagged any of it."""

SUSTAINED_READINGS = 5
"""... and at least this many readings: a minute-by-minute series needs five in a row (three
a minute apart happen in a patient's ordinary wander, see tests/detect)."""

SMOOTHING_SECONDS = 15.0
"""Beat by beat, the gate is read through a rolling median over this long, so that one
normal-looking beat inside a tachycardia does not break the run in two."""


def sustained_runs(gate_z: FloatArray, times: IntArray, min_z: float) -> IntArray:
    """Rows of ``sustained_gate`` runs (see there)."""
    return sustained_gate(gate_z, times, min_z)[0]


def sustained_gate(
    gate_z: FloatArray, times: IntArray, min_z: float
) -> tuple[IntArray, FloatArray]:
    """Rows in runs of ``gate_z >= min_z`` lasting ``SUSTAINED_MINUTES`` and
    ``SUSTAINED_READINGS``: a sustained deviation from the patient's own baseline (an SVT run
    of minutes, a slow climb) is one event even when it is longer than the detector's
    contamination ceiling lets it flag, or when the detector ranks other readings above it.
    Returns the rows and the (smoothed) gate z-score that put each in its run.

    >>> minute = 60_000
    >>> sustained_runs(np.array([1, 5, 5, 5, 5, 5, 1, 5, 1.0]), np.arange(9) * minute, 4.0)
    array([1, 2, 3, 4, 5])
    """
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))
    if min_z <= 0 or gate_z.size < SUSTAINED_READINGS:
        return none
    step_ms = max(float(np.median(np.diff(times))), 1.0)
    window = int(round(SMOOTHING_SECONDS * 1000 / step_ms))
    if window >= 3:
        gate_z = (
            pd.Series(gate_z)
            .rolling(window | 1, center=True, min_periods=1)
            .median()
            .to_numpy(dtype=np.float64)
        )
    above = np.concatenate(([False], gate_z >= min_z, [False]))
    change = np.flatnonzero(above[1:] != above[:-1])
    starts, ends = change[::2], change[1::2]
    long = (ends - starts >= SUSTAINED_READINGS) & (
        times[ends - 1] - times[starts] >= SUSTAINED_MINUTES * 60_000
    )
    if not long.any():
        return none
    rows = np.concatenate([np.arange(a, b) for a, b in zip(starts[long], ends[long], strict=True)])
    return rows.astype(np.int64), gate_z[rows]


def check_detector_name(name: str) -> None:
    """Raise PolicyError unless ``name`` is "" or a detector medsleep knows."""
    if name and name not in DETECTOR_NAMES:
        known = ", ".join(sorted(DETECTOR_NAMES))
        raise PolicyError(f"unknown detector {name!r}; use one of: {known}")


def _mad(contamination: float, window: int) -> Any:
    from pyod.models.mad import MAD

    return MAD(contamination=contamination)


def _spectral_residual(contamination: float, window: int) -> Any:
    from pyod.models.ts_spectral_residual import SpectralResidual

    return SpectralResidual(contamination=contamination)


def _matrix_profile(contamination: float, window: int) -> Any:
    from pyod.models.ts_matrix_profile import MatrixProfile

    return MatrixProfile(window_size=window, contamination=contamination)


def _time_series_od(contamination: float, window: int) -> Any:
    from pyod.models.ts_od import TimeSeriesOD

    return TimeSeriesOD(detector="ECOD", window_size=window, contamination=contamination)


def _ecod(contamination: float, window: int) -> Any:
    return _sign_skew_ecod()(contamination=contamination)


@functools.cache
def _sign_skew_ecod() -> type:
    from pyod.models.ecod import ECOD
    from pyod.utils.stat_models import column_ecdf

    class SignSkewECOD(ECOD):  # type: ignore[misc]
        """PyOD's ECOD, scoring exactly as it does, with the skewness's sign from numpy.

        ECOD uses only the sign of each column's skewness; scipy's ``skew`` spent half of
        ECOD's time checking its arguments (measured: 1.5 of 2.9 s CPU in a 100-patient
        night, ``benchmarks/consolidate.py``)."""

        def decision_function(self, X: Any) -> Any:
            if self.n_jobs != 1:
                return super().decision_function(X)
            fitted = hasattr(self, "X_train")
            original_size = X.shape[0]
            if fitted:
                X = np.concatenate((self.X_train, X), axis=0)
            self.U_l = -1 * np.log(column_ecdf(X))
            self.U_r = -1 * np.log(column_ecdf(-X))
            skewness = _skew_sign(X)
            self.U_skew = self.U_l * -1 * np.sign(skewness - 1) + self.U_r * np.sign(skewness + 1)
            self.O = np.maximum(np.maximum(self.U_l, self.U_r), self.U_skew)
            scores = self.O.sum(axis=1)
            return (scores[-original_size:] if fitted else scores).ravel()

    return SignSkewECOD


def _skew_sign(X: FloatArray) -> FloatArray:
    """Per column, the sign of the (biased) sample skewness: of the third central moment,
    0 for a constant column (where scipy's skew is nan and PyOD makes it 0)."""
    mean = X.mean(axis=0)
    centred = X - mean
    m2 = (centred**2).mean(axis=0)
    m3 = (centred**2 * centred).mean(axis=0)  # as scipy multiplies, to the last bit
    # scipy calls a column constant when its variance is within rounding of its mean's square
    constant = m2 <= (np.finfo(X.dtype).eps * mean) ** 2
    return np.where(constant, 0.0, np.sign(m3))


# Detector kinds built here rather than by PyOD's shortcut registry of tabular models: a new
# kind is a factory and one line (and, if not tabular, its name in _UNIVARIATE or _TIME_SERIES).
_FACTORIES: dict[str, Callable[[float, int], Any]] = {
    "ECOD": _ecod,
    "MAD": _mad,
    "SpectralResidual": _spectral_residual,
    "MatrixProfile": _matrix_profile,
    "TimeSeriesOD": _time_series_od,
}
assert set(_FACTORIES) >= _UNIVARIATE | _TIME_SERIES


def make_detector(name: str, contamination: float, n_rows: int) -> Any:
    """A fresh, unfitted PyOD detector for ``name``.

    Tabular names go through PyOD's own shortcut registry; the time-series models get a window
    that fits the series.
    """
    check_detector_name(name)
    # Short windows: a spike lands in `window` windows whose scores tie, and PyOD flags none of
    # a tie larger than its contamination.
    window = max(4, min(10, n_rows // 8))
    factory = _FACTORIES.get(name)
    if factory is not None:
        return factory(contamination, window)
    from pyod.models.embedding import resolve_detector

    return resolve_detector(name, contamination=contamination, random_state=RANDOM_STATE)


# A smooth series long enough for every detector to fit (see warm_up_detectors).
_WARM_UP_VALUES = 70 + 5 * np.sin(np.arange(2 * MIN_DETECTOR_READINGS) / 3.0)


def warm_up_detectors(names: Any) -> None:
    """Import the PyOD models behind ``names`` and fit each once now, so that a process pool
    forked afterwards starts with them loaded and their numba kernels compiled, instead of
    each worker importing PyOD and scikit-learn and compiling in its first shard (measured:
    ECOD's ``column_ecdf`` kernel is 0.45 s CPU a process)."""
    for name in set(names):
        if name:
            detect_series(_WARM_UP_VALUES, name, 0.05, 0.0)


def resolution(values: FloatArray) -> float:
    """Smallest step between distinct values: the series' measurement resolution (0 if one
    value). A deviation of one step is never an anomaly, however constant the series."""
    distinct = np.unique(values[np.isfinite(values)])
    return float(np.diff(distinct).min()) if distinct.size > 1 else 0.0


def robust_z(x: FloatArray, floor: float = 0.0) -> FloatArray:
    """``x`` centred on its median and divided by its robust scale, at least ``floor`` (inf
    where the scale is 0)."""
    centred = x - np.median(x) if x.size else x
    scale = max(robust_scale(x), floor)
    if scale > 0:
        return centred / scale
    signs: FloatArray = np.where(centred == 0, 0.0, np.copysign(np.inf, centred))
    return signs


def baseline_window(times: IntArray, minutes: float = BASELINE_MINUTES) -> int:
    """Readings (odd) that span ``minutes`` at the series' median sampling interval."""
    if times.size < 2:
        return MIN_BASELINE_READINGS
    step_minutes = max(float(np.median(np.diff(times))) / 60_000, 1e-3)
    readings = max(MIN_BASELINE_READINGS, round(minutes / step_minutes))
    return int(readings) | 1


def baseline_deviation(values: FloatArray, window: int) -> FloatArray:
    """Deviation of each value from the centred rolling median of its own series."""
    baseline: FloatArray = (
        pd.Series(values)
        .rolling(max(window, 1), center=True, min_periods=1)
        .median()
        .to_numpy(dtype=np.float64)
    )
    deviation: FloatArray = values - baseline
    return deviation


def series_features(
    values: FloatArray, window: int, scale: bool = True
) -> tuple[FloatArray, FloatArray]:
    """Features of one series (value, first difference, deviation from its ``window``-reading
    baseline), robustly scaled when ``scale``, and the deviation's robust z-score used by the
    magnitude gate."""
    deviation = baseline_deviation(values, window)
    difference = np.diff(values, prepend=values[:1])
    columns = [values, difference, deviation]
    if scale:
        columns = [_scaled(column) for column in columns]
    return np.column_stack(columns), np.abs(robust_z(deviation, resolution(values)))


def _scaled(x: FloatArray) -> FloatArray:
    """``x`` centred on its median and divided by its robust scale, for distance-based models."""
    scale = robust_scale(x)
    centred = x - np.median(x)
    return centred / scale if scale > 0 else centred


def fit_and_flag(
    name: str,
    contamination: float,
    features: FloatArray,
    deviations: FloatArray,
    gate_z: FloatArray,
    min_z: float,
) -> DetectorFlags:
    """Fit a fresh ``name`` detector and return the rows over its threshold that pass the gate.

    ``features`` (rows × columns) feed tabular models; ``deviations`` from the baseline (rows,
    or rows × channels) feed the time-series models, which need a series without drift, and
    the univariate MAD.
    """
    n_rows = features.shape[0]
    if not name or contamination <= 0 or n_rows < MIN_DETECTOR_READINGS:
        return DetectorFlags.none()
    if np.ptp(features, axis=0).max() == 0:
        return DetectorFlags.none()  # a constant series has nothing to rank
    detector = make_detector(name, min(contamination, 0.5), n_rows)
    with warnings.catch_warnings():
        # Near-constant columns make PyOD's moment estimates warn about precision loss; the
        # scores are still usable and the magnitude gate decides anyway.
        warnings.simplefilter("ignore", RuntimeWarning)
        if name in _TIME_SERIES:
            detector.fit(deviations)
        elif name in _UNIVARIATE:
            detector.fit(deviations.reshape(-1, 1))
        else:
            detector.fit(features)
    scores = np.asarray(detector.decision_scores_, dtype=np.float64)
    threshold = float(detector.threshold_)
    over: BoolArray = scores > threshold
    if min_z > 0:
        over &= gate_z >= min_z
    positions = np.flatnonzero(over).astype(np.int64)
    return DetectorFlags(positions, scores[positions], threshold)


def detect_series(
    values: FloatArray,
    name: str,
    contamination: float,
    min_z: float,
    times: IntArray | None = None,
) -> DetectorFlags:
    """Run detector ``name`` on one plausible, time-ordered series.

    ``times`` (epoch ms) set the baseline window; without them readings are one a minute.
    """
    if not name or values.size < MIN_DETECTOR_READINGS:
        return DetectorFlags.none()
    window = baseline_window(times) if times is not None else BASELINE_MINUTES | 1
    features, gate_z = series_features(values, window, scale=name not in _SCALE_FREE)
    flags = fit_and_flag(name, contamination, features, features[:, -1], gate_z, min_z)
    segment = grow_segments(flags.positions, gate_z, min_z)
    if times is None:
        times = np.arange(values.size, dtype=np.int64) * 60_000
    sustained, smoothed = sustained_gate(gate_z, times, min_z)
    # A sustained row's score is the smoothed gate that put it in its run (one beat of it may
    # itself lie nearer the baseline).
    segment_z = gate_z.copy()
    segment_z[sustained] = np.maximum(segment_z[sustained], smoothed)
    segment = np.union1d(segment, np.setdiff1d(sustained, flags.positions)).astype(np.int64)
    return replace(flags, segment=segment, segment_z=segment_z[segment])


def detect_aligned(
    matrix: FloatArray,
    name: str,
    contamination: float,
    min_z: float,
    align_minutes: float = 1,
    contributing_z: float = CONTRIBUTING_Z,
) -> DetectorFlags:
    """Run detector ``name`` on several aligned series (rows = ``align_minutes`` buckets, no NaN).

    Features are each column's value and deviation from its own baseline; the gate takes the
    largest deviation z-score across columns. ``columns`` of the result tells which series
    deviated in each flagged row, so a normal series is not retained for its neighbours' sake.
    """
    if not name or matrix.shape[0] < MIN_DETECTOR_READINGS or matrix.shape[1] == 0:
        return DetectorFlags.none()
    if name in _UNIVARIATE:
        raise PolicyError(f"detector {name!r} is univariate; pick another for multivariate")
    window = max(MIN_BASELINE_READINGS, round(BASELINE_MINUTES / max(align_minutes, 1))) | 1
    deviations = np.column_stack(
        [baseline_deviation(matrix[:, j], window) for j in range(matrix.shape[1])]
    )
    features = np.column_stack((matrix, deviations))
    if name not in _SCALE_FREE:
        features = np.column_stack([_scaled(features[:, j]) for j in range(features.shape[1])])
    z = np.abs(
        np.column_stack(
            [robust_z(deviations[:, j], resolution(matrix[:, j])) for j in range(matrix.shape[1])]
        )
    )
    gate_z = z.max(axis=1)
    flags = fit_and_flag(name, contamination, features, deviations, gate_z, min_z)
    flagged_z = z[flags.positions]
    columns = (flagged_z >= contributing_z) | (flagged_z == gate_z[flags.positions, None])
    return DetectorFlags(flags.positions, flags.scores, flags.threshold, columns)
