"""Event recall, reading recall and compression of classify_patient on ``medsleep.synth`` data.

    .venv/bin/python benchmarks/detect_quality.py [--patients 100] [--days 1] [--seed 11]

compression = readings / (retained + summaries), one summary per (code, hourly bucket, band)
among the readings not retained. Targets: event recall >= 0.98, reading recall >= 0.95,
compression >= 20. Override policy knobs with the options to explore trade-offs.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import replace

import numpy as np
from synth_frames import load

from medsleep.detect import classify_patient
from medsleep.policy import Policy, load_policy


def _override(policy: Policy, args: argparse.Namespace) -> Policy:
    codes = {}
    for code, cp in policy.codes.items():
        if args.z is not None:
            cp = replace(cp, min_deviation_z=args.z)
        if args.contamination is not None and cp.detector:
            cp = replace(cp, contamination=args.contamination)
        codes[code] = cp
    mv = policy.multivariate
    if args.mv_z is not None:
        mv = replace(mv, min_deviation_z=args.mv_z)
    if args.mv_contamination is not None:
        mv = replace(mv, contamination=args.mv_contamination)
    policy = replace(policy, codes=codes, multivariate=mv)
    if args.context is not None:
        policy = replace(policy, context_minutes=args.context)
    if args.dwell is not None:
        policy = replace(policy, transition_dwell=args.dwell)
    return policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--context", type=float, help="override context_minutes")
    parser.add_argument("--dwell", type=int, help="override transition_dwell")
    parser.add_argument("--z", type=float, help="override every code's min_deviation_z")
    parser.add_argument("--mv-z", type=float, help="override multivariate min_deviation_z")
    parser.add_argument("--contamination", type=float, help="override per-code contamination")
    parser.add_argument("--mv-contamination", type=float, help="override multivariate one")
    args = parser.parse_args()
    policy = _override(load_policy(), args)
    bucket_ms = policy.bucket_minutes * 60_000
    readings = retained = summaries = 0
    events_hit: Counter[str] = Counter()
    events_all: Counter[str] = Counter()
    labelled_hit: Counter[str] = Counter()
    labelled_all: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    for patient in load(args.patients, args.days, args.seed):
        frame = patient.frame
        decisions = classify_patient(frame, policy)
        kept = np.isin(frame["id"].to_numpy(), decisions.retained_ids)
        rest = frame.loc[~kept]
        groups = {
            (c, t // bucket_ms, b)
            for c, t, b in zip(rest["code"], rest["t"], decisions.band.loc[~kept], strict=True)
        }
        readings += len(frame)
        retained += int(kept.sum())
        summaries += len(groups)
        by_rule.update(decisions.reasons["rule"].tolist())
        for kind, ids in patient.events:
            hit = np.isin(ids, decisions.retained_ids)
            events_all[kind] += 1
            events_hit[kind] += int(hit.any())
            labelled_all[kind] += len(ids)
            labelled_hit[kind] += int(hit.sum())
    print(f"{args.patients} patients x {args.days} days, {readings} readings")
    print(
        f"retained {retained} ({retained / readings:.2%}), summaries {summaries}, "
        f"compression {readings / (retained + summaries):.1f}x"
    )
    total_events = sum(events_all.values())
    if total_events:
        print(
            f"event recall {sum(events_hit.values()) / total_events:.3f}, "
            f"reading recall {sum(labelled_hit.values()) / sum(labelled_all.values()):.3f}"
        )
    for kind in sorted(events_all):
        print(
            f"  {kind:>13}: events {events_hit[kind]}/{events_all[kind]}, "
            f"readings {labelled_hit[kind] / labelled_all[kind]:.3f} of {labelled_all[kind]}"
        )
    print("reason rows:", dict(by_rule.most_common()))


if __name__ == "__main__":
    main()
