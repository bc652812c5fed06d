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
    key = ["code", "unit", "bucket", "band"]
    cells = collapse[["code", "unit", "band"]].assign(bucket=buckets)
    size = cells.groupby(key, sort=False)["code"].transform("size").to_numpy()
    sparse: npt.NDArray[np.bool_] = (size < minimum) & (cells["band"].to_numpy() != ARTIFACT_BAND)
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
                for c, u, b in zip(cells["code"], cells["unit"], buckets, strict=True)
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
    cells = rows[["code", "unit", "band"]].assign(bucket=buckets)
    size = cells.groupby(["code", "unit", "bucket", "band"], sort=False)["code"].transform("size")
    threshold = float(policy.min_summary_readings)
    return [
        (run_id, int(i), "sparse", "too-sparse", float(n), threshold, None, None)
        for i, n in zip(rows["id"], size, strict=True)
    ]
