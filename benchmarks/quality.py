"""Quality of consolidation on real labelled recordings and on labelled synthetic ICU data,
side by side with three peers.

    .venv/bin/python benchmarks/quality.py [--cases real,synth] [--patients 30] [--days 1]

medsleep runs for real (ingest into SQLite, consolidate with the default policy). Scoring and
peers are ``medsleep.evaluate`` (see ``fixtures/real-labelled/README.md`` for the rules):
  compression    = readings in / (raw readings kept + summary rows)
  recall (real)  = labelled resources with a kept reading / labelled resources (event: any)
Synthetic data adds event recall (labelled windows with a kept reading), reading recall
(readings inside windows that are kept) and precision (kept readings inside an event or
artifact window). Peers: hourly downsampling; NEWS2/critical rules alone (keep score >= 3 on
the real cases, whose labels are score-3 readings; on synthetic data the k in 1..3 closest to
medsleep's compression); a PI-style swinging door with its deviation
bisected to medsleep's compression.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select
from synth_extended import generate_extended

from medsleep.consolidate.executors import parse_executor
from medsleep.consolidate.job import ConsolidationReport, consolidate
from medsleep.evaluate import (
    Labels,
    PeerResult,
    hourly_downsample,
    news2_rules,
    score_labelled,
    swinging_door_matched,
)
from medsleep.evaluate.peers import news2_subscores
from medsleep.evaluate.scoring import compression
from medsleep.ingest import ingest_paths
from medsleep.policy import Policy, load_policy
from medsleep.store.engine import open_store
from medsleep.store.handle import Store
from medsleep.store.models import Reading, Summary
from medsleep.synth import generate
from medsleep.timefmt import parse_iso_ms

READING = Reading.__table__  # type: ignore[attr-defined]
SUMMARY = Summary.__table__  # type: ignore[attr-defined]
REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real-labelled"
REAL_CASES = ("mitdb100", "mimic2a", "mimic2b", "ucr135")
TARGETS = {"mitdb100": 20.0, "mimic2a": 15.0, "mimic2b": 2.0, "ucr135": 50.0}
FAR_FUTURE = parse_iso_ms("2100-01-01T00:00:00+00:00")


def run_medsleep(
    inputs: list[Path], work: Path, policy: Policy, executor: str
) -> tuple[pd.DataFrame, np.ndarray, int, ConsolidationReport]:
    """Ingest ``inputs`` into a fresh SQLite store and consolidate everything.

    Returns the readings in (id, patient, code, t, value, resource_key), which of them were
    kept raw, the active summary count and the run report."""
    url = f"sqlite:///{work / 'q.db'}"
    engine = open_store(url)
    ingest_paths(engine, [str(p) for p in inputs])
    cols = [READING.c.id, READING.c.patient, READING.c.code, READING.c.effective_ms]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols, READING.c.value, READING.c.resource_key)).all()
    readings = pd.DataFrame(rows, columns=["id", "patient", "code", "t", "value", "resource_key"])
    report = consolidate(
        Store.open(url, work / "archive"),
        policy,
        until_ms=FAR_FUTURE,
        executor=parse_executor(executor),
    )
    with engine.connect() as conn:
        kept_ids = [
            r[0] for r in conn.execute(select(READING.c.id).where(READING.c.state == "retained"))
        ]
        summaries = len(conn.execute(select(SUMMARY.c.id).where(SUMMARY.c.state == "active")).all())
    engine.dispose()
    kept = readings["id"].isin(kept_ids).to_numpy()
    return readings, kept, summaries, report


def closest_rules(readings: pd.DataFrame, policy: Policy, target: float) -> PeerResult:
    """The NEWS2/critical rules peer with the score k in 1..3 closest to ``target``x."""
    by_k = [news2_rules(readings, policy, k) for k in (1, 2, 3)]
    return min(
        by_k,
        key=lambda p: abs(compression(len(readings), int(p.kept.sum()), p.summaries) - target),
    )


def _real_case(name: str, policy: Policy, executor: str) -> list[dict[str, object]]:
    labels = Labels.from_json(json.loads((REAL / f"{name}.labels.json").read_text()))
    with tempfile.TemporaryDirectory(prefix=f"medsleep-quality-{name}-") as tmp:
        readings, kept, summaries, _ = run_medsleep(
            [REAL / f"{name}.ndjson.gz"], Path(tmp), policy, executor
        )
    keys = readings["resource_key"].tolist()
    ours = score_labelled(keys, kept, summaries, labels)
    rows: list[dict[str, object]] = [
        {"case": name, "method": "medsleep", "setting": "", **ours.__dict__}
    ]
    peers: list[PeerResult] = [
        hourly_downsample(readings),
        news2_rules(readings, policy, 3),
        swinging_door_matched(readings, ours.compression),
    ]
    for peer in peers:
        score = score_labelled(keys, peer.kept, peer.summaries, labels)
        rows.append({"case": name, "method": peer.name, "setting": peer.setting, **score.__dict__})
    return rows


def real(policy: Policy, executor: str) -> None:
    print(
        f"{'case':9} {'method':22} {'compression':>11} {'recall':>7} {'kept':>7}  target   setting"
    )
    for name in REAL_CASES:
        for row in _real_case(name, policy, executor):
            ours = row["method"] == "medsleep"
            target = f">= {TARGETS[name]:.0f}x" if ours else ""
            print(
                f"{row['case']:9} {row['method']:22} {row['compression']:10.1f}x "
                f"{row['recall']:7.3f} {row['labelled_kept']:>3}/{row['labelled']:<3}  "
                f"{target:8} {row['setting']}"
            )


# --- synthetic ------------------------------------------------------------------------


def _windows(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["start_ms"] = [parse_iso_ms(s.replace("Z", "+00:00")) for s in frame["start"]]
    frame["end_ms"] = [parse_iso_ms(s.replace("Z", "+00:00")) for s in frame["end"]]
    return frame


def _inside(readings: pd.DataFrame, windows: pd.DataFrame) -> np.ndarray:
    """Per reading: does it lie in a window of its patient and code?"""
    mask = np.zeros(len(readings), dtype=bool)
    index = readings.groupby(["patient", "code"]).indices
    t = readings["t"].to_numpy()
    for w in windows.itertuples():
        rows = index.get((w.patient, w.code))
        if rows is not None:
            hit = (t[rows] >= w.start_ms) & (t[rows] < w.end_ms)
            mask[rows[hit]] = True
    return mask


def _window_score(
    name: str,
    readings: pd.DataFrame,
    kept: np.ndarray,
    summaries: int,
    events: pd.DataFrame,
    in_event: np.ndarray,
    relevant: np.ndarray,
) -> dict[str, object]:
    caught = 0
    index = readings.groupby(["patient", "code"]).indices
    t = readings["t"].to_numpy()
    for w in events.itertuples():
        rows = index.get((w.patient, w.code))
        if rows is not None and np.any(kept[rows] & (t[rows] >= w.start_ms) & (t[rows] < w.end_ms)):
            caught += 1
    return {
        "method": name,
        "compression": compression(len(readings), int(kept.sum()), summaries),
        "event_recall": caught / max(1, len(events)),
        "reading_recall": float(kept[in_event].mean()) if in_event.any() else float("nan"),
        "precision": float(relevant[kept].mean()) if kept.any() else float("nan"),
    }


def synthetic(policy: Policy, patients: int, days: float, seed: int, executor: str) -> None:
    with tempfile.TemporaryDirectory(prefix="medsleep-quality-synth-") as tmp:
        work = Path(tmp)
        generate(work / "in", patients=patients, days=days, seed=seed)
        readings, kept, summaries, report = run_medsleep(
            [work / "in" / "observations.ndjson"], work, policy, executor
        )
        events = _windows(work / "in" / "labels.csv")
        artifacts = _windows(work / "in" / "artifacts.csv")
    in_event = _inside(readings, events)
    relevant = in_event | _inside(readings, artifacts)
    critical = news2_subscores(readings, policy) == 3
    rows = [_window_score("medsleep", readings, kept, summaries, events, in_event, relevant)]
    target = float(rows[0]["compression"])  # type: ignore[arg-type]
    peers = [hourly_downsample(readings), swinging_door_matched(readings, target)]
    peers.append(closest_rules(readings, policy, target))
    for peer in peers:
        label = f"{peer.name} ({peer.setting})" if peer.setting else peer.name
        rows.append(
            _window_score(label, readings, peer.kept, peer.summaries, events, in_event, relevant)
        )
    print(
        f"{len(readings):,} readings, {len(events)} labelled event windows, "
        f"{patients} patients x {days} days, seed {seed}; run {report.run_id} {report.status}"
    )
    print(f"rule-critical readings retained: {int((kept & critical).sum())}/{int(critical.sum())}")
    print(
        f"{'method':40} {'compression':>11} {'event recall':>12} {'reading recall':>14} "
        f"{'precision':>9}"
    )
    for row in rows:
        print(
            f"{row['method']:40} {row['compression']:10.1f}x {row['event_recall']:12.3f} "
            f"{row['reading_recall']:14.3f} {row['precision']:9.3f}"
        )


def extended(policy: Policy, executor: str) -> None:
    """The kinds of series the generator does not make (see ``synth_extended``)."""
    with tempfile.TemporaryDirectory(prefix="medsleep-quality-ext-") as tmp:
        work = Path(tmp)
        path, events = generate_extended(work / "in")
        readings, kept, summaries, report = run_medsleep([path], work, policy, executor)
    in_event = _inside(readings, events)
    print(
        f"{len(readings):,} readings of the extended kinds, {len(events)} labelled windows; "
        f"run {report.run_id} {report.status}; series judged clinically "
        f"{report.series_clinical}, statistically only {report.series_statistical}; "
        f"kept raw as too sparse {report.sparse}"
    )
    target = compression(len(readings), int(kept.sum()), summaries)
    methods: list[tuple[str, np.ndarray, int]] = [("medsleep", kept, summaries)]
    for peer in (
        hourly_downsample(readings),
        swinging_door_matched(readings, target),
        closest_rules(readings, policy, target),
    ):
        label = f"{peer.name} ({peer.setting})" if peer.setting else peer.name
        methods.append((label, peer.kept, peer.summaries))
    kinds = sorted(events["event"].unique())
    print(f"{'method':40} {'compression':>11} " + " ".join(f"{k:>12}" for k in kinds))
    for label, kept_mask, n_summaries in methods:
        by_kind = [
            _window_score(
                label, readings, kept_mask, n_summaries, events[events["event"] == k],
                in_event, in_event,
            )["event_recall"]
            for k in kinds
        ]  # fmt: skip
        ratio = compression(len(readings), int(kept_mask.sum()), n_summaries)
        print(f"{label:40} {ratio:10.1f}x " + " ".join(f"{r:12.3f}" for r in by_kind))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="real,synth,extended", help="real, synth, extended")
    parser.add_argument("--patients", type=int, default=30)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--executor", default="processes:2")
    args = parser.parse_args()
    policy = load_policy()
    cases = set(args.cases.split(","))
    if "real" in cases:
        real(policy, args.executor)
    if "synth" in cases:
        synthetic(policy, args.patients, args.days, args.seed, args.executor)
    if "extended" in cases:
        extended(policy, args.executor)


if __name__ == "__main__":
    main()
