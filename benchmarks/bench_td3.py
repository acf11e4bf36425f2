"""TD3 at (U, H) = (200, 8): training steps per second and greedy decision latency.

    python benchmarks/bench_td3.py [--users 200] [--servers 8] [--steps 120] [--threads 1]

A training step is what ``dtasm_opt.train`` does per environment step after the collection
phase: act (actor + exploration noise), implement the argmax in the simulator, store the
transition, one critic update and every lambda-th step an actor and target update. The
decision latency is the greedy ``td3:PATH`` method's ``decide`` (observation, actor, argmax).
Absolute times on these shared machines are noisy. The side-by-side comparison with
Stable-Baselines3's TD3 (same environment and budget, final cloud load, ratios) is
``benchmarks/bench_td3_vs_sb3.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.solvers.registry import make_method
from dtasm_opt.solvers.td3.config import TD3Config
from dtasm_opt.solvers.td3.training import train


def bench_train(stream, steps: int, threads: int, out: Path) -> float:
    cfg = TD3Config(threads=threads, learning_starts=20)
    start = time.perf_counter()
    train(stream, cfg, out, steps, checkpoint_every=steps, progress=False)
    return steps / (time.perf_counter() - start)


def bench_decide(stream, path: Path, calls: int) -> np.ndarray:
    policy = make_method(f"td3:{path}")
    inst = stream.instance(0)
    times = []
    for t in range(calls):
        t0 = time.perf_counter()
        policy.decide(inst, t)
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--servers", type=int, default=8)
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    stream = generate_stream(Scenario(users=args.users, servers=args.servers), 1, steps=50)
    with tempfile.TemporaryDirectory() as tmp:
        rate = bench_train(stream, args.steps, args.threads, Path(tmp))
        lat = bench_decide(stream, Path(tmp) / "last.pt", 200)
    print(f"(U, H) = ({args.users}, {args.servers}), {args.threads} torch thread(s)")
    print(f"ours: {rate:.1f} training steps/s over {args.steps} steps")
    print(f"ours: greedy decision {1e3 * np.median(lat):.2f} ms median, {1e3 * lat.max():.2f} max")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
