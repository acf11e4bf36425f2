"""MILP-greedy against the five baselines on the default scenario, and its solve times.

    python studies/milp_greedy_default/summarize.py

Reads ``rollout.csv`` here (MILP-greedy) and ``../baselines_default/rollout.csv`` (the five
baselines on the same stream: generate --users 200 --servers 8 --seed 1 --steps 500, rollout
--seed 1) and prints a markdown table of the means over the steps both cover, then the
distribution of MILP-greedy's decision time per step and its statuses.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from dtasm_opt.experiments.rollout import summarize

HERE = Path(__file__).parent


def main() -> None:
    milp = list(csv.DictReader(open(HERE / "rollout.csv")))
    steps = {r["step"] for r in milp}
    base = [
        r
        for r in csv.DictReader(open(HERE.parent / "baselines_default" / "rollout.csv"))
        if r["step"] in steps
    ]
    print(f"Means over {len(steps)} steps (U=200, H=8, xi=1.2 s, stream seed 1)\n")
    print("| method | cloud MB | downtime ms | migrated | failed | rejected | users on ESs |")
    print("|---|---|---|---|---|---|---|")
    for row in summarize(base + milp):
        print(
            f"| {row['method']} | {row['cloud_load_mb']:.2f} | {row['downtime_ms']:.0f} | "
            f"{row['migrated']:.1f} | {row['migration_failed']:.2f} | {row['rejected']:.2f} "
            f"| {row['users_on_edge']:.1f} |"
        )
    t = np.array([float(r["decision_time_s"]) for r in milp])
    q = np.percentile(t, [50, 90, 99])
    print(
        f"\nMILP-greedy decision time per step: median {q[0]:.2f} s, p90 {q[1]:.2f} s, "
        f"p99 {q[2]:.2f} s, max {t.max():.2f} s, mean {t.mean():.2f} s"
    )
    print("statuses:", dict(Counter(r["status"] for r in milp)))
    gaps = [float(r["gap"]) for r in milp if r["status"] == "time_limit" and r["gap"]]
    if gaps:
        print(f"time-limited steps: median gap {np.median(gaps):.2e}, max {max(gaps):.2e}")
    zero = sum(float(r["cloud_load_bytes"]) == 0 for r in milp)
    print(f"steps with nothing in the cloud: {zero} of {len(milp)}")


if __name__ == "__main__":
    main()
