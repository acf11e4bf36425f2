"""Agent variants on the default scenario, trained side by side (one process each).

    python studies/td3_default/sweep.py OUTDIR [--steps 2000] [--only NAME,...] [--jobs N]

Each variant runs ``python -m dtasm_opt.train`` on the study's stream (U=200, H=8, xi=1.2 s,
stream seed 1, T=500; agent seed 0, one torch thread) into OUTDIR/NAME, then rolls its greedy
actor (``td3:OUTDIR/NAME/policy.pt``) over one 500-step episode into OUTDIR/NAME/greedy.csv.
OUTDIR/summary.json holds, per variant, the last 500 training steps and the greedy episode
(cloud load MB, migrated, migration-failed) and the wall time. The variants are the rows of
the README's table; they differ only in the flags below.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dtasm_opt.cli import HelpFormatter

SHARED = ["--actor", "shared", "--explore-noise", "0.2"]
VARIANTS: dict[str, list[str]] = {
    "paper_mask": ["--mask"],  # the paper's agent (flat actor, noise 0.5) plus the mask
    "shared_mask": [*SHARED, "--mask"],
    "shared_mask_dan300": [*SHARED, "--mask", "--warm-start-steps", "300"],
    "shared_mask_stay300": [*SHARED, "--mask", "--warm-start-steps", "300", "--teacher", "stay"],
    "shared_mask_bias3": [*SHARED, "--mask", "--stay-bias", "3"],
    "flat_mask_bias3": ["--explore-noise", "0.2", "--mask", "--stay-bias", "3"],
    "shared_mask_milp100": [
        *SHARED,
        "--mask",
        "--warm-start-steps",
        "100",
        "--teacher",
        "milp",
        "--teacher-time-limit",
        "1",
    ],
    "shared_mask_bias3_milp100": [
        *SHARED,
        "--mask",
        "--stay-bias",
        "3",
        "--warm-start-steps",
        "100",
        "--teacher",
        "milp",
        "--teacher-time-limit",
        "1",
    ],
    # Second round: around the best (shared_mask_bias3).
    "shared_mask_bias1": [*SHARED, "--mask", "--stay-bias", "1"],
    "shared_mask_bias2": [*SHARED, "--mask", "--stay-bias", "2"],
    "shared_mask_bias3_noise05": ["--actor", "shared", "--mask", "--stay-bias", "3"],
    "shared_mask_bias3_delay2": [*SHARED, "--mask", "--stay-bias", "3", "--policy-delay", "2"],
    "shared_mask_bias3_lr1e-3": [*SHARED, "--mask", "--stay-bias", "3", "--lr", "1e-3"],
    "flat_bias3_nomask": ["--explore-noise", "0.2", "--stay-bias", "3"],
    "paper": [],  # the paper's agent, no option of ours
}


def stats(path: Path, last: int) -> dict:
    import csv

    import numpy as np

    rows = list(csv.DictReader(open(path, newline="")))[-last:]
    col = {k: np.array([float(r[k]) for r in rows]) for k in ("cloud_load_bytes", "migrated")}
    failed = np.array([float(r["migration_failed"]) for r in rows])
    return {
        "steps": len(rows),
        "cloud_mb": float(col["cloud_load_bytes"].mean() / 2**20),
        "migrated": float(col["migrated"].mean()),
        "failed": float(failed.mean()),
    }


def run_one(name: str, out: Path, steps: int) -> dict:
    from dtasm_opt.core.generator import Scenario, generate_stream
    from dtasm_opt.core.method import MethodSettings
    from dtasm_opt.experiments import rollout

    d = out / name
    cmd = [sys.executable, "-m", "dtasm_opt.train", "--users", "200", "--servers", "8"]
    cmd += ["--xi", "1.2", "--stream-seed", "1", "--stream-steps", "500", "--steps", str(steps)]
    cmd += ["--seed", "0", "--threads", "1", "--out", str(d), "--no-progress"]
    cmd += ["--checkpoint-every", str(steps), *VARIANTS[name]]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "wall_s": wall}
    stream = generate_stream(Scenario(), seed=1, steps=500)
    greedy = d / "greedy.csv"
    rollout.run(stream, [f"td3:{d / 'policy.pt'}"], greedy, settings=MethodSettings())
    (d / "last.pt").unlink(missing_ok=True)  # the replay buffer: not kept
    return {
        "flags": VARIANTS[name],
        "wall_s": wall,
        "train_last500": stats(d / "steps.csv", 500),
        "greedy_episode": stats(greedy, 500),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--only", default="", help="comma-separated variant names")
    p.add_argument("--jobs", type=int, default=len(VARIANTS))
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict] = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {n: pool.submit(run_one, n, out, args.steps) for n in names}
        for n, f in futures.items():
            summary[n] = f.result()
            (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
            print(n, json.dumps(summary[n]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
