"""Quality of consolidation on real labelled recordings and on labelled synthetic ICU data,
side by side with three peers.

    .venv/bin/python benchmarks/quality.py [--cases real,synth,extended,variants,waveform]

``waveform`` injects changes of shape (a weaker beat, a flattened trace, noise, ...) into the
real arterial pressure wave of ``ucr135`` (``synth_waveform``), 3 cases of each kind, at one
sample a minute as ``ucr135`` is given, or ``--wave-step-ms 8`` (125 a second) and
``--wave-mdc`` (under a device code) as a monitor sends raw samples.

``variants`` re-expresses each real recording the ways real sources differ (other LOINC or MDC
codes, a code in no catalogue, jittered timing, half and double rate, a gap, other units, the
source's own flags; ``medsleep.evaluate.variants``) and compares each with the original.

medsleep runs for real (ingest into a scratch SQLite store, consolidate with the default
policy). Running, scoring and peers are ``medsleep.evaluate`` — the same functions as
``medsleep evaluate`` (see ``fixtures/real-labelled/README.md`` for the rules):
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
import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

from synth_extended import generate_extended, generate_rhythms
from synth_waveform import waveform_cases

from medsleep.consolidate.executors import parse_executor
from medsleep.evaluate.labels import Windows, load_labels
from medsleep.evaluate.peers import news2_subscores
from medsleep.evaluate.run import consolidate_scratch, score_ids, score_windows
from medsleep.evaluate.scoring import Labels
from medsleep.evaluate.variants import VARIANTS, make_variant
from medsleep.policy import Policy, load_policy
from medsleep.synth import generate

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real-labelled"
REAL_CASES = ("mitdb100", "mimic2a", "mimic2b", "ucr135")
TARGETS = {"mitdb100": 20.0, "mimic2a": 15.0, "mimic2b": 2.0, "ucr135": 50.0}


def real_case(name: str, policy: Policy, executor: str) -> list[dict[str, Any]]:
    """One real-labelled case: medsleep and the peers, as ``medsleep evaluate`` scores it."""
    labels = load_labels(REAL / f"{name}.labels.json")
    assert isinstance(labels, Labels)
    with tempfile.TemporaryDirectory(prefix=f"medsleep-quality-{name}-") as tmp:
        run = consolidate_scratch(
            [REAL / f"{name}.ndjson.gz"], Path(tmp), policy, parse_executor(executor)
        )
    return [{"case": name, **row} for row in score_ids(run, labels, policy)]


def real(policy: Policy, executor: str) -> None:
    print(
        f"{'case':9} {'method':22} {'compression':>11} {'recall':>7} {'kept':>7}  target   setting"
    )
    for name in REAL_CASES:
        for row in real_case(name, policy, executor):
            ours = row["method"] == "medsleep"
            target = f">= {TARGETS[name]:.0f}x" if ours else ""
            print(
                f"{row['case']:9} {row['method']:22} {row['compression']:10.1f}x "
                f"{row['recall']:7.3f} {row['labelled_kept']:>3}/{row['labelled']:<3}  "
                f"{target:8} {row['setting']}"
            )


# --- variants -------------------------------------------------------------------------

RATE_VARIANTS = frozenset({"half-rate", "double-rate"})
NOISE = 0.9
"""A variant keeping less than this share of the original's compression loses compression by
more than noise. Half or double the readings change compression by themselves (summaries stay
one a bucket, a point event keeps as many readings at any rate, a long one as many as its
rate gives it), so a rate variant is judged by its raw readings kept instead: no more than the
original's, times the rate's factor when that is above one."""


def read_resources(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def variant_case(
    name: str, variant: str, policy: Policy, executor: str = "local"
) -> dict[str, Any]:
    """medsleep on one real case re-expressed as ``variant`` ("original": as recorded):
    compression, raw readings kept, summaries, labelled kept."""
    labels = load_labels(REAL / f"{name}.labels.json")
    assert isinstance(labels, Labels)
    resources = read_resources(REAL / f"{name}.ndjson.gz")
    if variant != "original":
        resources, labels = make_variant(variant, resources, labels)
    with tempfile.TemporaryDirectory(prefix=f"medsleep-variant-{name}-") as tmp:
        path = Path(tmp) / f"{name}-{variant}.ndjson"
        path.write_text("".join(json.dumps(r) + "\n" for r in resources))
        run = consolidate_scratch([path], Path(tmp), policy, parse_executor(executor))
    ours = score_ids(run, labels, policy)[0]
    return {
        "case": name,
        "variant": variant,
        "readings": len(run.readings),
        "kept_raw": int(run.kept.sum()),
        "summaries": run.summaries,
        "statistical": run.report.series_statistical,
        **ours,
    }


def judged(row: dict[str, Any], original: dict[str, Any]) -> str:
    """ "ok", or what the variant lost against the original."""
    lost = []
    if row["recall"] < original["recall"]:
        lost.append("labelled")
    if row["variant"] in RATE_VARIANTS:
        factor = max(1.0, row["readings"] / original["readings"])
        if row["kept_raw"] * NOISE > factor * original["kept_raw"]:
            lost.append("kept raw")
    elif row["compression"] < NOISE * original["compression"]:
        lost.append("compression")
    return "LOSS " + "+".join(lost) if lost else "ok"


def variants(policy: Policy, executor: str, names: list[str]) -> None:
    print(
        f"{'case':9} {'variant':13} {'readings':>8} {'compression':>11} {'vs orig':>7} "
        f"{'raw kept':>8} {'summ':>5} {'labelled':>8}  verdict"
    )
    for name in REAL_CASES:
        original = variant_case(name, "original", policy, executor)
        for variant in ["original", *names]:
            row = (
                original if variant == "original" else variant_case(name, variant, policy, executor)
            )
            ratio = row["compression"] / original["compression"]
            print(
                f"{name:9} {variant:13} {row['readings']:8,} {row['compression']:10.1f}x "
                f"{ratio:6.2f}x {row['kept_raw']:8} {row['summaries']:5} "
                f"{row['labelled_kept']:>4}/{row['labelled']:<3}  "
                f"{judged(row, original)}"
            )


# --- synthetic ------------------------------------------------------------------------


def _label(row: dict[str, Any]) -> str:
    return f"{row['method']} ({row['setting']})" if row["setting"] else str(row["method"])


def synthetic(policy: Policy, patients: int, days: float, seed: int, executor: str) -> None:
    with tempfile.TemporaryDirectory(prefix="medsleep-quality-synth-") as tmp:
        work = Path(tmp)
        generate(work / "in", patients=patients, days=days, seed=seed)
        run = consolidate_scratch(
            [work / "in" / "observations.ndjson"], work, policy, parse_executor(executor)
        )
        labels = load_labels(work / "in" / "labels.csv")
    assert isinstance(labels, Windows)
    critical = news2_subscores(run.readings, policy) == 3
    rows = score_windows(run, labels, policy)
    report = run.report
    print(
        f"{len(run.readings):,} readings, {len(labels.events)} labelled event windows, "
        f"{patients} patients x {days} days, seed {seed}; run {report.run_id} {report.status}"
    )
    print(
        f"rule-critical readings retained: {int((run.kept & critical).sum())}/{int(critical.sum())}"
    )
    print(
        f"{'method':40} {'compression':>11} {'event recall':>12} {'reading recall':>14} "
        f"{'precision':>9}"
    )
    for row in rows:
        print(
            f"{_label(row):40} {row['compression']:10.1f}x {row['event_recall']:12.3f} "
            f"{row['reading_recall']:14.3f} {row['precision']:9.3f}"
        )


def extended(policy: Policy, executor: str, rhythms: bool = False) -> None:
    """The kinds of series the generator does not make (see ``synth_extended``); with
    ``rhythms`` the beat-to-beat rhythm events at their real, subtle size."""
    with tempfile.TemporaryDirectory(prefix="medsleep-quality-ext-") as tmp:
        work = Path(tmp)
        make = generate_rhythms if rhythms else generate_extended
        path, events = make(work / "in")
        run = consolidate_scratch([path], work, policy, parse_executor(executor))
    report = run.report
    print(
        f"{len(run.readings):,} readings of the extended kinds, {len(events)} labelled windows; "
        f"run {report.run_id} {report.status}; series judged clinically "
        f"{report.series_clinical}, statistically only {report.series_statistical}; "
        f"kept raw as too sparse {report.sparse}"
    )
    rows = score_windows(run, Windows(events), policy)
    kinds = sorted(rows[0]["by_kind"])
    print(f"{'method':40} {'compression':>11} " + " ".join(f"{k:>12}" for k in kinds))
    for row in rows:
        by_kind = " ".join(f"{row['by_kind'][k]:12.3f}" for k in kinds)
        print(f"{_label(row):40} {row['compression']:10.1f}x " + by_kind)
    print("readings kept inside the windows, by kind:")
    for row in rows:
        by_kind = " ".join(f"{row['by_kind_readings'][k]:12.3f}" for k in kinds)
        print(f"{_label(row):40} {'':11} " + by_kind)


def waveform(
    policy: Policy, executor: str, step_ms: float | None = None, mdc: bool = False
) -> None:
    """Changes of shape injected into a real sampled wave (``synth_waveform``): how many of
    each kind medsleep keeps, and the swinging door at medsleep's compression."""
    caught: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="medsleep-quality-wave-") as tmp:
        for i, (kind, resources, labels) in enumerate(waveform_cases(step_ms=step_ms, mdc=mdc)):
            path = Path(tmp) / f"{kind}-{i}.ndjson"
            path.write_text("".join(json.dumps(r) + "\n" for r in resources))
            (Path(tmp) / str(i)).mkdir()
            run = consolidate_scratch([path], Path(tmp) / str(i), policy, parse_executor(executor))
            for row in score_ids(run, labels, policy):
                by = caught.setdefault(kind, {}).setdefault(row["method"], [])
                by.extend([row["recall"], row["compression"]])
    print(f"{'change':13} {'medsleep':>20} {'swinging door at its compression':>34}")
    for kind, rows in caught.items():
        cells = []
        for method in ("medsleep", "swinging door"):
            recall, compression = rows[method][0::2], rows[method][1::2]
            cells.append(
                f"{sum(recall):.0f}/{len(recall)} at {min(compression):.1f}-{max(compression):.1f}x"
            )
        print(f"{kind:13} {cells[0]:>20} {cells[1]:>34}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        default="real,synth,extended",
        help="real, synth, extended, rhythm, variants, waveform",
    )
    parser.add_argument(
        "--variants", default=",".join(v.name for v in VARIANTS), help="with --cases variants"
    )
    parser.add_argument(
        "--wave-step-ms", type=float, default=None, help="waveform: samples this far apart"
    )
    parser.add_argument("--wave-mdc", action="store_true", help="waveform: under MDC 150016")
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
    if "rhythm" in cases:
        extended(policy, args.executor, rhythms=True)
    if "variants" in cases:
        variants(policy, args.executor, args.variants.split(","))
    if "waveform" in cases:
        waveform(policy, args.executor, args.wave_step_ms, args.wave_mdc)


if __name__ == "__main__":
    main()
