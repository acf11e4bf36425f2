"""TD3 at (U, H) = (200, 8): training steps per second and greedy decision latency.

    python benchmarks/bench_td3.py [--users 200] [--servers 8] [--steps 120] [--threads 1]

A training step is what ``dtasm_opt.train`` does per environment step after the collection
phase: act (actor + exploration noise), implement the argmax in the simulator, store the
transition, one critic update and every lambda-th step an actor and target update. The
decision latency is the greedy ``td3:PATH`` method's ``decide`` (observation, actor, argmax).
Stable-Baselines3's TD3 is run on the same environment and budget when it is installed
(``pip install 'dtasm-opt[sb3]'``); otherwise that line says so. Figures are measured side by
side in one run; absolute times on these shared machines are noisy. For the full comparison
(same budget, final cloud load, ratios) use ``benchmarks/bench_td3_vs_sb3.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dtasm_opt.env import DTASMEnv
from dtasm_opt.generator import Scenario, generate_stream
from dtasm_opt.methods import make_method
from dtasm_opt.solvers.td3 import TD3Config
from dtasm_opt.train import train


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


def bench_sb3(stream, steps: int) -> str:
    try:
        from stable_baselines3 import TD3
    except ImportError:
        return "SB3: not installed (pip install 'dtasm-opt[sb3]'); no side-by-side figure"
    env = DTASMEnv(stream)
    model = TD3(
        "MlpPolicy",
        env,
        learning_rate=1e-4,
        buffer_size=2048,
        batch_size=128,
        tau=0.005,
        gamma=0.1,
        learning_starts=20,
        policy_delay=20,
        policy_kwargs={"net_arch": [256] * 4},
        seed=0,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return f"SB3 TD3: {steps / (time.perf_counter() - start):.1f} steps/s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    print(bench_sb3(stream, args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
