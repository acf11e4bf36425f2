"""Simulator step time at (U, H) = (200, 8), (1000, 16), (5000, 32), and the knapsack's share.

For each size, a generated stream is rolled out with DANearest, Nearest and Random (whose
targets crowd the popular ESs, so that the knapsack P3 has work to do). The actions are decided
first; then ``simulator.apply`` is timed alone on the recorded (instance, action) pairs. A
second pass over the same pairs wraps ``max_load_subset`` to time the knapsack calls, and
reports their share of that pass's step time. Both passes run side by side in one process, as
docs/design.md §8 asks: an absolute time from these shared machines means little.

    python benchmarks/bench_simulator.py [--quick] [--steps N] [--seed S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core import simulator
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.solvers.registry import make_method

SIZES = ((200, 8), (1000, 16), (5000, 32))
POLICIES = ("danearest", "nearest", "random")
TARGET_S = 2e-3  # issue 2: median step at (200, 8) under 2 ms


def record(users: int, servers: int, steps: int, seed: int) -> list[tuple]:
    """(policy, instance, action) for ``steps`` steps of each policy on one paired stream."""
    stream = generate_stream(Scenario(users=users, servers=servers), seed=seed, steps=steps)
    pairs = []
    for name in POLICIES:
        method = make_method(name, MethodSettings(seed=seed))
        server = stream.initial_server
        for t in range(steps):
            inst = stream.instance(t, server)
            action = method.decide(inst, t).action
            pairs.append((name, inst, action))
            server = simulator.apply(inst, action).final_server
    return pairs


def time_steps(pairs: Sequence[tuple]) -> np.ndarray:
    """Wall time of ``simulator.apply`` per recorded pair."""
    out = np.empty(len(pairs))
    for i, (_, inst, action) in enumerate(pairs):
        start = time.perf_counter()
        simulator.apply(inst, action)
        out[i] = time.perf_counter() - start
    return out


def time_knapsack_share(pairs: Sequence[tuple]) -> dict:
    """Step time and knapsack time per pair, with ``max_load_subset`` wrapped by a timer."""
    inner = simulator.max_load_subset
    spent: list[float] = []
    sizes: list[int] = []

    def timed(weights, values, capacity):
        start = time.perf_counter()
        try:
            return inner(weights, values, capacity)
        finally:
            spent.append(time.perf_counter() - start)
            sizes.append(len(weights))

    simulator.max_load_subset = timed
    try:
        step_s = np.empty(len(pairs))
        knap_s = np.empty(len(pairs))
        for i, (_, inst, action) in enumerate(pairs):
            before = len(spent)
            start = time.perf_counter()
            simulator.apply(inst, action)
            step_s[i] = time.perf_counter() - start
            knap_s[i] = sum(spent[before:])
    finally:
        simulator.max_load_subset = inner
    return {
        "share": float(knap_s.sum() / step_s.sum()),
        "calls_per_step": len(spent) / len(pairs),
        "max_call_s": max(spent, default=0.0),
        "max_candidates": max(sizes, default=0),
    }


def _ms(x: float) -> str:
    return f"{1e3 * x:8.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run (few steps)")
    parser.add_argument("--steps", type=int, default=None, help="steps per policy and size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = args.steps or (10 if args.quick else 100)
    print(
        f"simulator.apply step time, {steps} steps x {len(POLICIES)} policies "
        f"({', '.join(POLICIES)}) per size, seed {args.seed}",
        file=sys.stderr,
    )
    header = (
        f"{'U':>5} {'H':>3} | {'median ms':>9} {'p90 ms':>8} {'max ms':>8} | "
        f"{'knapsack share':>14} {'calls/step':>10} {'max n':>5} {'max call ms':>11}"
    )
    print(header)
    print("-" * len(header))
    medians = {}
    for users, servers in SIZES:
        pairs = record(users, servers, steps, args.seed)
        step_s = time_steps(pairs)
        knap = time_knapsack_share(pairs)
        med = statistics.median(step_s.tolist())
        medians[(users, servers)] = med
        print(
            f"{users:>5} {servers:>3} | {_ms(med):>9} {_ms(np.quantile(step_s, 0.9))} "
            f"{_ms(step_s.max())} | {100 * knap['share']:13.1f}% "
            f"{knap['calls_per_step']:10.1f} {knap['max_candidates']:5d} "
            f"{_ms(knap['max_call_s']):>11}"
        )
        per_policy = {
            name: statistics.median(
                [t for (p, _, _), t in zip(pairs, step_s, strict=True) if p == name]
            )
            for name in POLICIES
        }
        print(
            "            median by policy: "
            + ", ".join(f"{k} {1e3 * v:.3f} ms" for k, v in per_policy.items())
        )
    ratio = medians[(200, 8)] / TARGET_S
    verdict = "met" if ratio < 1 else "NOT met"
    print(
        f"target: median step at (200, 8) < 2 ms: {1e3 * medians[(200, 8)]:.3f} ms, "
        f"ratio {ratio:.2f} ({verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
