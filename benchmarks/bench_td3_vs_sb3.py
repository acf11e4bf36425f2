"""Our TD3 vs Stable-Baselines3's TD3 on the same environment, stream and step budget.

    python benchmarks/bench_td3_vs_sb3.py [--steps 1000 | --quick] [--users 200] [--servers 8]
        [--threads 1] [--json FILE]

Both agents train on ``DTASMEnv`` over the same generated stream (Scenario(U, H), stream seed
1, T=500) for ``--steps`` environment steps, one after the other (SB3 first), with the same
number of torch threads, on the CPU (torch's lazy imports are paid before timing; our wall
time includes writing the step CSV and the final checkpoint, SB3's its Monitor). Measured:
training wall time (steps/s), greedy decision latency (one state -> action, median of 200
calls) and the mean cloud load, migrated and migration-failed users over the last N training
steps (N = steps/2, at most 500), read from the environment's ``info`` (the simulator's
judgement) for both.

- ours: :func:`dtasm_opt.train.train` with ``--configs`` ``paper`` (TD3Config(): flat actor,
  paper Section V-A) or ``final`` (the study's final configuration, see
  studies/td3_default/README.md); decision = the ``td3:PATH`` method's ``decide``.
- SB3: ``TD3("MlpPolicy")`` with the paper's numbers (net_arch [256]*4, buffer 2048, batch 128,
  gamma 0.1, tau 0.005, lr 1e-4, policy_delay 20, learning_starts 50) and NormalActionNoise of
  std 0.1 on its tanh action (U*H values, flattened by SB3); the env implements the per-user
  argmax; decision = ``model.predict(obs, deterministic=True)``.

SB3 is optional (``pip install -e ".[sb3]"``); without it the script says so and exits 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.rl.env import DTASMEnv
from dtasm_opt.solvers.td3.config import TD3Config

FINAL = dict(actor="shared", explore_noise=0.2, mask_infeasible=True, stay_bias=3.0)


def summarise(loads, migrated, failed, last: int) -> dict:
    return {
        "cloud_mb": float(np.mean(loads[-last:]) / 2**20),
        "migrated": float(np.mean(migrated[-last:])),
        "failed": float(np.mean(failed[-last:])),
    }


def run_ours(stream, steps: int, threads: int, config: str, last: int) -> dict:
    from dtasm_opt.solvers.registry import make_method
    from dtasm_opt.solvers.td3.training import train

    cfg = TD3Config(threads=threads, **(FINAL if config == "final" else {}))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(stream, cfg, tmp, steps, checkpoint_every=steps, progress=False)
        wall = time.perf_counter() - t0
        rows = list(csv.DictReader(open(Path(tmp) / "steps.csv", newline="")))
        policy = make_method(f"td3:{Path(tmp) / 'policy.pt'}")
        inst = stream.instance(0)
        lat = []
        for t in range(200):
            t1 = time.perf_counter()
            policy.decide(inst, t)
            lat.append(time.perf_counter() - t1)
    col = {k: [float(r[k]) for r in rows] for k in ("cloud_load_bytes", "migrated")}
    failed = [float(r["migration_failed"]) for r in rows]
    return {
        "name": f"ours ({config})",
        "wall_s": wall,
        "decision_ms": 1e3 * float(np.median(lat)),
        **summarise(col["cloud_load_bytes"], col["migrated"], failed, last),
    }


def run_sb3(stream, steps: int, threads: int, last: int) -> dict:
    import torch
    from stable_baselines3 import TD3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    class Record(BaseCallback):
        def __init__(self):
            super().__init__()
            self.loads, self.migrated, self.failed = [], [], []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                self.loads.append(info["cloud_load_bytes"])
                self.migrated.append(info["migrated"])
                self.failed.append(info["migration_failed"])
            return True

    torch.set_num_threads(threads)
    env = DTASMEnv(stream)
    shape = env.action_space.shape  # SB3's actor outputs prod(shape) values, reshaped
    model = TD3(
        "MlpPolicy",
        env,
        learning_rate=1e-4,
        buffer_size=2048,
        batch_size=128,
        tau=0.005,
        gamma=0.1,
        learning_starts=50,
        policy_delay=20,
        action_noise=NormalActionNoise(np.zeros(shape), np.full(shape, 0.1)),
        policy_kwargs={"net_arch": [256] * 4},
        seed=0,
        device="cpu",
        verbose=0,
    )
    rec = Record()
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, callback=rec)
    wall = time.perf_counter() - t0
    obs, _ = env.reset(seed=0)
    lat = []
    for _ in range(200):
        t1 = time.perf_counter()
        model.predict(obs, deterministic=True)
        lat.append(time.perf_counter() - t1)
    return {
        "name": "SB3 TD3",
        "wall_s": wall,
        "decision_ms": 1e3 * float(np.median(lat)),
        **summarise(rec.loads, rec.migrated, rec.failed, last),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="200 steps")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--servers", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--configs", default="paper,final", help="ours: paper and/or final")
    p.add_argument("--ours-first", action="store_true", help="run ours before SB3")
    p.add_argument("--no-sb3", action="store_true", help="ours only (SB3 in another process)")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        print("stable-baselines3 is not installed: pip install -e '.[sb3]'")
        return 2
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pay torch's lazy imports untimed
    steps = 200 if args.quick else args.steps
    last = max(1, min(500, steps // 2))
    stream = generate_stream(Scenario(users=args.users, servers=args.servers), 1, steps=500)
    # SB3 first by default: on a shared machine a later run tends to get less CPU, so this order
    # does not favour ours (--ours-first to check).
    sb3 = None if args.no_sb3 or args.ours_first else run_sb3(stream, steps, args.threads, last)
    configs = [c for c in args.configs.split(",") if c]
    results = [run_ours(stream, steps, args.threads, c, last) for c in configs]
    if args.ours_first and not args.no_sb3:
        sb3 = run_sb3(stream, steps, args.threads, last)
    results += [sb3] if sb3 else []
    print(
        f"(U, H) = ({args.users}, {args.servers}), {steps} steps, {args.threads} torch "
        f"thread(s); cloud load etc. over the last {last} training steps"
    )
    print("| agent | wall s | steps/s | decision ms | cloud MB | migrated | failed |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['name']} | {r['wall_s']:.1f} | {steps / r['wall_s']:.1f} | "
            f"{r['decision_ms']:.2f} | {r['cloud_mb']:.2f} | {r['migrated']:.1f} | "
            f"{r['failed']:.2f} |"
        )
    for r in results[:-1] if sb3 else []:
        r["wall_ratio_vs_sb3"] = r["wall_s"] / sb3["wall_s"]
        r["cloud_mb_minus_sb3"] = r["cloud_mb"] - sb3["cloud_mb"]
        print(
            f"{r['name']}: wall time {r['wall_ratio_vs_sb3']:.2f} x SB3's, cloud load "
            f"{r['cloud_mb_minus_sb3']:+.2f} MB vs SB3"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": steps, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
