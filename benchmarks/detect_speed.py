"""How long classify_patient (+ group_episodes) takes per patient-day of 7 per-minute series.

    .venv/bin/python benchmarks/detect_speed.py [--patients 50] [--synth]

Default data: 7 one-a-minute series per patient-day (benchmarks/synthetic_vitals.py); with
``--synth``, the ICU generator ``medsleep.synth`` (5 vitals a minute, temperature, labs).

Target: well under 50 ms per patient-day (5M readings in < 2.5 min on 2 cores with DB I/O).
"""

from __future__ import annotations

import argparse
import statistics
import time

from synth_frames import load
from synthetic_vitals import patient_day

from medsleep.detect import classify_patient, group_episodes
from medsleep.policy import load_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--synth", action="store_true", help="use medsleep.synth data")
    args = parser.parse_args()
    policy = load_policy()
    if args.synth:
        frames = [p.frame for p in load(args.patients, 1, seed=11)]
    else:
        frames = [patient_day(seed).frame for seed in range(args.patients)]
    classify_patient(frames[0], policy)  # warm imports
    classify_ms, episodes_ms = [], []
    cpu_start = time.process_time()
    for frame in frames:
        start = time.perf_counter()
        decisions = classify_patient(frame, policy)
        middle = time.perf_counter()
        group_episodes(frame, decisions, policy)
        end = time.perf_counter()
        classify_ms.append((middle - start) * 1000)
        episodes_ms.append((end - middle) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / len(frames)
    readings = round(statistics.mean(len(frame) for frame in frames))
    print(f"{args.patients} patient-days of {readings} readings each")
    for name, times in (("classify_patient", classify_ms), ("group_episodes", episodes_ms)):
        print(
            f"{name:>17}: median {statistics.median(times):.1f} ms, "
            f"p95 {sorted(times)[int(0.95 * len(times))]:.1f} ms, max {max(times):.1f} ms"
        )
    print(f"CPU time per patient-day (classify + episodes): {cpu_ms:.1f} ms")
    total = statistics.mean(c + e for c, e in zip(classify_ms, episodes_ms, strict=True))
    print(f"5M readings ≈ {total * 5_000_000 / readings / 1000 / 2:.0f} s of detection on 2 cores")


if __name__ == "__main__":
    main()
