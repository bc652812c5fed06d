"""Per-patient detect frames and labelled events from ``medsleep.synth`` (the ICU generator).

Bypasses ingest and the store: it parses the generated NDJSON directly (temperature in [degF]
converted to Cel as ingest does) and maps ``labels.csv`` windows onto reading ids.
"""

from __future__ import annotations

import csv
import gzip
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from medsleep.synth import generate

TEMP = "8310-5"


@dataclass(frozen=True)
class SynthPatient:
    patient: str
    frame: pd.DataFrame
    events: list[tuple[str, np.ndarray]]
    """(event kind, labelled reading ids) per event (all its codes together)."""


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def load(patients: int, days: float, seed: int) -> list[SynthPatient]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out, patients=patients, days=days, seed=seed, compress=True)
        rows: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
        with gzip.open(out / "observations.ndjson.gz", "rb") as lines:
            for line in lines:
                obs = orjson.loads(line)
                patient = obs["subject"]["reference"].split("/")[1]
                t = _ms(obs["effectiveDateTime"])
                if "component" in obs:
                    for comp in obs["component"]:
                        code = comp["code"]["coding"][0]["code"]
                        rows[patient].append((code, t, float(comp["valueQuantity"]["value"])))
                    continue
                code = obs["code"]["coding"][0]["code"]
                quantity = obs["valueQuantity"]
                value = float(quantity["value"])
                if quantity["code"] == "[degF]":
                    value = (value - 32.0) * 5.0 / 9.0
                rows[patient].append((code, t, value))
        with (out / "labels.csv").open() as handle:
            labels = list(csv.DictReader(handle))
    result = []
    next_id = 1
    for patient in sorted(rows):
        frame = pd.DataFrame(rows[patient], columns=["code", "t", "value"])
        frame = frame.sort_values(["code", "t"], kind="stable", ignore_index=True)
        frame.insert(0, "id", np.arange(next_id, next_id + len(frame), dtype=np.int64))
        next_id += len(frame)
        grouped: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
        for label in labels:
            if label["patient"] != patient:
                continue
            start, end = _ms(label["start"]), _ms(label["end"])
            inside = (frame["code"] == label["code"]) & frame["t"].between(start, end - 1)
            key = (label["event"], label["start"])
            grouped[key].append(frame.loc[inside, "id"].to_numpy())
        events = [(kind, np.concatenate(ids)) for (kind, _), ids in grouped.items()]
        result.append(SynthPatient(patient, frame, events))
    return result
