"""The shard's loader: every reading column as stored, text as numpy object columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from medsleep.consolidate.shard import ShardTask, load_raw
from medsleep.ingest import ingest_paths
from medsleep.policy import load_policy
from medsleep.store.bodies import bodies_of
from medsleep.store.tables import READING, ReadingState
from medsleep.timefmt import parse_iso_ms
from tests.conftest import SAMPLE

UNTIL = parse_iso_ms("2030-01-01T00:00:00+00:00")


def _task(db_url: str, patient: str) -> ShardTask:
    return ShardTask(db_url, "unused", 1, 1, patient, UNTIL, load_policy(), 0)


def test_load_raw_gives_every_column_as_stored(db_url: str, engine: Engine) -> None:
    ingest_paths(engine, [str(SAMPLE)])
    with engine.connect() as conn:
        patient = conn.execute(select(READING.c.patient).limit(1)).scalar_one()
        stored = pd.DataFrame(
            conn.execute(
                select(READING)
                .where(READING.c.patient == patient, READING.c.state == ReadingState.RAW)
                .order_by(READING.c.code, READING.c.effective_ms, READING.c.id)
            ).all()
        )
        raw = load_raw(conn, _task(db_url, patient))
        pairs = list(zip(stored["resource_key"], stored["resource_version"], strict=True))
        bodies = bodies_of(conn, pairs)
    assert list(raw.columns) == [*(c.name for c in READING.c), "resource_body"]
    assert len(raw) == len(stored) > 0
    for name in stored.columns:
        assert raw[name].tolist() == stored[name].tolist(), name
    # each reading with its resource's body as stored, in one query
    expected = [bodies[p] for p in pairs]
    assert raw["resource_body"].tolist() == expected
    assert all(type(b) is bytes for b in raw["resource_body"])
    # Text stays numpy object (pandas 3 would infer Arrow-backed str, slow to compare)
    text = [c.name for c in READING.c if raw[c.name].dtype.kind not in "iuf"]
    assert {"patient", "state", "code", "resource_key"} <= set(text)
    assert all(raw[name].dtype == np.dtype(object) for name in text)


def test_load_raw_of_a_patient_without_readings_is_empty(db_url: str, engine: Engine) -> None:
    ingest_paths(engine, [str(SAMPLE)])
    with engine.connect() as conn:
        raw = load_raw(conn, _task(db_url, "Patient/nobody"))
    assert raw.empty
    assert list(raw.columns) == [*(c.name for c in READING.c), "resource_body"]
