"""Exact per-step solvers side by side on the same states, one solve at a time, one thread:
status, time to proof and final gap; medians and maxima over seeds (issue 9's baseline).

    python benchmarks/bench_exact.py [--sizes 200x8,280x8,300x8,400x8,1000x16] [--seeds 1-5]
        [--steps 0,20] [--solvers milp,cpsat,scip] [--second-stage none|migrations]
        [--time-limit 60] [--out bench_exact.csv]

States: step 0 of each seed's stream, and the state a MILP-greedy rollout reaches at each
later step given in ``--steps`` (the rollout stops every stage at one HiGHS node, a work
limit, so these states are the same on every machine; they are cached beside the CSV).
Solvers: ``milp`` (HiGHS through highspy, the project's reference), ``milp-scaled`` (the same
on the scaled matrix: objective in MB, capacity rows in units of capacity), ``cpsat`` (OR-Tools),
``lagrangian`` (the engine with its defaults: scaled matrix, 2,000 HiGHS nodes per stage),
``scip`` (SCIP through pyscipopt, ``pip install -e ".[bench]"``; load stage only: with
``--second-stage migrations`` its rows are skipped). Every action is judged by the
simulator; the gap is the simulator's cloud load against the solver's proven bound.

One CSV row per solve, appended as it finishes: an interrupted run resumes where it stopped
(rows already in ``--out`` are not solved again). The table printed at the end gives, per
size, step and solver: solves, proven, median and max time, median and max gap, and the
median time over the milp median.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Decision, judge
from dtasm_opt.experiments.states import rollout_state
from dtasm_opt.models.pairs import action_from_assignment
from dtasm_opt.models.step_problem import step_problem
from dtasm_opt.solvers import registry
from dtasm_opt.solvers.exact.highs_direct import ScaledBackend
from dtasm_opt.solvers.exact.milp_driver import BOUND_SAFETY_REL

COLUMNS = ("size", "seed", "step", "solver", "second_stage", "time_limit_s", "status",
           "time_s", "cloud_load_bytes", "bound_bytes", "gap", "migrated")  # fmt: skip


class ScipStage1:
    """The stage-1 model solved by SCIP; bound = SCIP's dual bound lowered as the project
    lowers HiGHS's. It gets the scaled matrix of ``--backend scaled`` (objective in MB, each
    capacity row divided by its capacity): on the raw rows (coefficients near 1e9 Hz) SCIP's
    dual bound stayed at the trivial value for the whole 10 s at (280, 8)."""

    name = "scip"

    def __init__(self, time_limit_s: float, seed: int):
        self.time_limit_s, self.seed = time_limit_s, seed

    def decide(self, inst: Instance, step: int) -> Decision:
        from pyscipopt import Model, quicksum

        problem = step_problem(inst)
        scaled = ScaledBackend()  # the matrix --backend scaled gives HiGHS
        m, unit = scaled.arrays(problem), scaled.STAGE1_UNIT
        model = Model()
        model.hideOutput()
        model.setParam("limits/time", self.time_limit_s)
        model.setParam("limits/gap", 0.0)
        model.setParam("randomization/randomseedshift", self.seed)
        x = [model.addVar(vtype="B", obj=float(c)) for c in m["col_cost"]]
        start, index, value = m["a_start"], m["a_index"], m["a_value"]
        for r, upper in enumerate(m["row_upper"]):
            cols = range(start[r], start[r + 1])
            model.addCons(quicksum(float(value[j]) * x[index[j]] for j in cols) <= float(upper))
        model.optimize()
        if model.getNSols() > 0:
            chosen = np.array([model.getVal(v) > 0.5 for v in x], dtype=bool)
        else:
            chosen = np.zeros(problem.n_pairs, dtype=bool)
        # No repair: the simulator judges the action as it is (an ES that SCIP's tolerance
        # overfilled rejects users, and the judged cloud load shows it).
        bound = (m["offset"] + model.getDualbound()) * unit
        bound -= BOUND_SAFETY_REL * problem.total_load_bytes
        status = "optimal" if model.getStatus() == "optimal" else "time_limit"
        action = action_from_assignment(inst, problem.pairs, chosen)
        return Decision(action=action, status=status, bound_bytes=max(bound, 0.0), info={})


def parse_sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in s.split("x")) for s in text.split(",")]  # type: ignore[misc]


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def state(users: int, servers: int, seed: int, step: int, cache: Path) -> Instance:
    """Step ``step`` of seed ``seed``'s stream, reached by MILP-greedy (cached on disk): the
    states of ``generate --set --at-step``, made by the same function."""
    path = cache / f"u{users}-h{servers}-s{seed}-t{step}.json.gz"
    if path.exists():
        return files.read_instance(path)
    inst = rollout_state(Scenario(users=users, servers=servers), seed, step)
    cache.mkdir(parents=True, exist_ok=True)
    files.write_json(path, inst.to_dict())
    return inst


def make_solver(name: str, args: argparse.Namespace, seed: int):
    if name == "scip":
        return ScipStage1(args.time_limit, seed)
    # "milp-scaled": the milp method on the scaled matrix (backend "scaled").
    method, backend = ("milp", "scaled") if name == "milp-scaled" else (name, None)
    settings = MethodSettings(
        seed=seed,
        time_limit_s=args.time_limit,
        threads=1,
        second_stage=args.second_stage,
        backend=backend,
    )
    return registry.make_method(method, settings)


KEY = ("size", "seed", "step", "solver", "second_stage", "time_limit_s")


def done_keys(path: Path, key: tuple[str, ...] = KEY) -> set[tuple]:
    """The ``key`` columns of every row already in ``path``: what a resumed run skips."""
    if not path.exists():
        return set()
    with open(path, newline="") as fh:
        return {tuple(r[c] for c in key) for r in csv.DictReader(fh)}


def append_row(path: Path, row: dict, columns: tuple[str, ...] = COLUMNS) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        if new:
            w.writeheader()
        w.writerow(row)
        fh.flush()
        os.fsync(fh.fileno())


def summary(path: Path, second_stage: str, limit: float) -> str:
    with open(path, newline="") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["second_stage"] == second_stage and float(r["time_limit_s"]) == limit
        ]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["size"], int(r["step"]), r["solver"]), []).append(r)
    lines = [
        f"second stage: {second_stage}; time limit {limit:g} s per stage; 1 thread",
        "| size | step | solver | solves | proven | median s | max s | median gap | max gap "
        "| median s / milp |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    medians = {k: statistics.median(float(r["time_s"]) for r in g) for k, g in groups.items()}
    for key in sorted(groups, key=lambda k: (int(k[0].split("x")[0]), k[1], k[2])):
        g = groups[key]
        gaps = [float(r["gap"]) if r["gap"] else math.nan for r in g]
        times = [float(r["time_s"]) for r in g]
        ref = medians.get((key[0], key[1], "milp"))
        ratio = f"{medians[key] / ref:.2f}" if ref else "-"
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {len(g)} | "
            f"{sum(r['status'] == 'optimal' for r in g)} | {statistics.median(times):.3g} | "
            f"{max(times):.3g} | {statistics.median(gaps):.2e} | {max(gaps):.2e} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument(
        "--sizes", default="200x8,280x8,300x8,400x8,1000x16", help="UxH, comma-separated"
    )
    p.add_argument("--seeds", default="1-5", help="e.g. 1-5 or 1,3")
    p.add_argument("--steps", default="0,20", help="states: step 0 and MILP-greedy's later steps")
    p.add_argument(
        "--solvers",
        default="milp,milp-scaled,cpsat,scip",
        help="of milp, milp-scaled, cpsat, lagrangian, scip",
    )
    p.add_argument(
        "--second-stage",
        choices=("none", "migrations"),
        default="none",
        help="the tie-break too, or the load stage only",
    )
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per stage")
    p.add_argument("--out", default="bench_exact.csv", help="CSV, appended; a rerun resumes")
    args = p.parse_args(argv)
    out = Path(args.out)
    cache = out.with_suffix(".states")
    solvers = args.solvers.split(",")
    if "scip" in solvers and args.second_stage != "none":
        print("scip: load stage only; skipped with --second-stage migrations", file=sys.stderr)
        solvers.remove("scip")
    done = done_keys(out)
    for users, servers in parse_sizes(args.sizes):
        for seed in parse_seeds(args.seeds):
            for step in [int(s) for s in args.steps.split(",")]:
                for name in solvers:
                    key = (f"{users}x{servers}", str(seed), str(step), name,
                           args.second_stage, str(args.time_limit))  # fmt: skip
                    if key in done:
                        continue
                    inst = state(users, servers, seed, step, cache)
                    t0 = time.perf_counter()
                    sol = judge(make_solver(name, args, seed), inst, step)
                    row = dict(zip(COLUMNS[:6], key, strict=True))
                    row.update(
                        status=sol.status,
                        time_s=time.perf_counter() - t0,
                        cloud_load_bytes=sol.cloud_load_bytes,
                        bound_bytes=sol.bound_bytes,
                        gap=sol.gap,
                        migrated=sol.metrics["migrated"],
                    )
                    append_row(out, row)
                    print(f"{key[0]} seed {seed} step {step} {name}: {sol.status} in "
                          f"{row['time_s']:.2f} s, gap {sol.gap}", file=sys.stderr)  # fmt: skip
    print(summary(out, args.second_stage, args.time_limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
