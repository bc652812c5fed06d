"""Summaries only where they compress: normal readings too sparse to summarise stay raw.

A summary row stands for at least ``policy.min_summary_readings`` readings (default 3); a
yearly blood pressure is not turned into a one-reading summary. The readings of a sparser cell
are retained with the reason ``sparse/too-sparse`` (score: how many the cell held).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from medsleep.consolidate.summarize import ARTIFACT_BAND, bucket_start_ms
from medsleep.policy import Policy


def too_sparse(collapse: pd.DataFrame, late: pd.DataFrame, policy: Policy) -> npt.NDArray[np.bool_]:
    """Per reading to collapse: would its summary stand for fewer than
    ``policy.min_summary_readings`` readings?

    A summary is one (code, unit, bucket, band) cell. A cell that already holds archived
    readings (late data) is summarised again as before, so summaries stay exact; sensor-off
    runs keep their ``artifact`` summary whatever their length (it holds their values).
    """
    minimum = policy.min_summary_readings
    if minimum <= 1 or collapse.empty:
        return np.zeros(len(collapse), dtype=np.bool_)
    buckets = bucket_start_ms(collapse["effective_ms"].to_numpy(), policy.bucket_minutes)
    size = _cell_sizes(collapse, buckets)
    sparse: npt.NDArray[np.bool_] = (size < minimum) & (
        collapse["band"].to_numpy() != ARTIFACT_BAND
    )
    if sparse.any() and not late.empty:
        late_cells = set(
            zip(
                late["code"],
                late["unit"],
                bucket_start_ms(late["effective_ms"].to_numpy(), policy.bucket_minutes).tolist(),
                strict=True,
            )
        )
        touched = np.array(
            [
                (c, u, int(b)) in late_cells
                for c, u, b in zip(collapse["code"], collapse["unit"], buckets, strict=True)
            ],
            dtype=np.bool_,
        )
        sparse &= ~touched
    return sparse


def sparse_retention_rows(rows: pd.DataFrame, policy: Policy, run_id: int) -> list[tuple[Any, ...]]:
    """Retention rows for readings too sparse to summarise: score is the cell's size."""
    if rows.empty:
        return []
    buckets = bucket_start_ms(rows["effective_ms"].to_numpy(), policy.bucket_minutes)
    size = _cell_sizes(rows, buckets)
    threshold = float(policy.min_summary_readings)
    return [
        (run_id, int(i), "sparse", "too-sparse", float(n), threshold, None, None)
        for i, n in zip(rows["id"], size.tolist(), strict=True)
    ]


def _cell_sizes(rows: pd.DataFrame, buckets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """How many of ``rows`` share each row's (code, unit, bucket, band) cell.

    The cells are numbered key by key with ``pd.factorize`` (measured: a third of the CPU of a
    four-key groupby, a patient-day). A missing key fails here with the error
    ``collapse_normal_runs`` gives it further on."""
    cell = np.zeros(len(rows), dtype=np.int64)
    keys: dict[str, npt.NDArray[Any]] = {
        name: rows[name].to_numpy(dtype=object) for name in ("code", "unit", "band")
    }
    keys["bucket"] = buckets
    for name, key in keys.items():
        codes = pd.factorize(key)[0].astype(np.int64)
        if (codes < 0).any():
            raise ValueError(f"column {name!r} has missing values")
        cell = pd.factorize(cell * (codes.max() + 1) + codes)[0].astype(np.int64)
    sizes: npt.NDArray[np.int64] = np.bincount(cell)[cell]
    return sizes
