"""MILP-greedy's rollout with ``milp`` against the same with the ``lagrangian`` engine: per step,
whether the tie-break (fewest migrations) was proven, how (HiGHS, a certificate, fixing), and
the decision time. Each method follows its own trajectory on the same stream. Without
``--node-limit`` each keeps its own defaults (``milp``: the direct matrix and the clock; the
engine: the scaled matrix and 2,000 HiGHS nodes per stage).

    python benchmarks/bench_tiebreak_rollout.py [--users 200] [--servers 8] [--seed 1]
        [--steps 15] [--time-limit 30] [--node-limit N] [--out bench_tiebreak_rollout.csv]

One CSV row per method and step; a method's rows are appended when its rollout finishes, so
an interrupted run skips the methods already complete and plays the others again from step
0 (a rollout's state is its history). The table at the end: per method, steps, tie-breaks proven (by
certificate), median, p90 and max seconds per step, and migrations in all.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

from bench_exact import append_row

from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.solvers import registry

METHODS = (registry.REFERENCE, "lagrangian")
COLUMNS = ("users", "servers", "seed", "time_limit_s", "node_limit", "method", "step",
           "load_status", "tie_break", "proof", "certified", "migrated", "decision_s")  # fmt: skip


def rollout(args: argparse.Namespace, method: str) -> list[dict]:
    stream = generate_stream(Scenario(users=args.users, servers=args.servers), args.seed,
                             steps=args.steps)  # fmt: skip
    settings = MethodSettings(seed=args.seed, time_limit_s=args.time_limit, threads=1,
                              node_limit=args.node_limit)  # fmt: skip
    policy = registry.make_method(method, settings)
    rows, server = [], None
    for t in range(args.steps):
        inst = stream.instance(t, server)
        t0 = time.perf_counter()
        sol = judge(policy, inst, t)
        info = sol.info
        rows.append({
            "users": args.users, "servers": args.servers, "seed": args.seed,
            "time_limit_s": args.time_limit, "node_limit": args.node_limit or "",
            "method": method, "step": t, "load_status": sol.status,
            "tie_break": info.get("stage2_status"), "proof": info.get("stage2_proof", ""),
            "certified": "migrations" in info.get("certificate", {}),
            "migrated": sol.metrics["migrated"], "decision_s": time.perf_counter() - t0,
        })  # fmt: skip
        server = sol.final_server
        print(f"{method} step {t}: tie-break {rows[-1]['tie_break']} {rows[-1]['proof']} in "
              f"{rows[-1]['decision_s']:.2f} s", file=sys.stderr)  # fmt: skip
    return rows


def summary(rows: list[dict]) -> str:
    lines = [
        "| method | steps | tie-break proven | certified | median s | p90 s | max s | migrations |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        g = [r for r in rows if r["method"] == method]
        if not g:
            continue
        t = sorted(float(r["decision_s"]) for r in g)
        lines.append(
            f"| {method} | {len(g)} | {sum(r['tie_break'] == 'optimal' for r in g)} | "
            f"{sum(str(r['certified']) == 'True' for r in g)} | {statistics.median(t):.3g} | "
            f"{t[max(0, int(0.9 * len(t)) - 1)]:.3g} | {t[-1]:.3g} | "
            f"{sum(int(r['migrated']) for r in g)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--servers", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds per HiGHS stage")
    p.add_argument("--node-limit", type=int, default=None, help="HiGHS nodes per stage")
    p.add_argument("--out", default="bench_tiebreak_rollout.csv")
    args = p.parse_args(argv)
    out = Path(args.out)
    key = (str(args.users), str(args.servers), str(args.seed), str(args.time_limit),
           str(args.node_limit or ""))  # fmt: skip
    done: dict[str, list[dict]] = {}
    if out.exists():
        with open(out, newline="") as fh:
            for r in csv.DictReader(fh):
                if tuple(r[c] for c in COLUMNS[:5]) == key:
                    done.setdefault(r["method"], []).append(r)
    rows: list[dict] = []
    for method in METHODS:
        if len(done.get(method, [])) >= args.steps:
            rows += done[method][: args.steps]
            continue
        new = rollout(args, method)
        for r in new:
            append_row(out, r, COLUMNS)
        rows += new
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
