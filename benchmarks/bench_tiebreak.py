"""The tie-break (fewest migrations among load-optimal plans) on later states, side by side:
``milp`` (HiGHS's second stage within its limit) against the ``lagrangian`` engine (HiGHS's
two stages, then a Lagrangian bound that certifies or proves what HiGHS left open, and
reduced-cost fixing where the bound is one migration short), with the engine's certificates
checked by ``verify``.

    python benchmarks/bench_tiebreak.py [--sizes 200x8] [--seeds 1-5] [--steps 5,10,20]
        [--time-limit 30] [--node-limit N] [--tree-rounds N] [--column-rounds N]
        [--out bench_tiebreak.csv]

States: the ones of ``benchmarks/bench_exact.py`` (MILP-greedy's rollout at one HiGHS node
per stage; cached beside the CSV). Both methods solve each state once, one thread, with
``--time-limit`` seconds per HiGHS stage and, with ``--node-limit``, that many HiGHS nodes
per stage (a work limit: every row then repeats). Without ``--node-limit`` each method keeps
its own defaults: ``milp`` the direct matrix and the clock, the engine the scaled matrix and
2,000 nodes per stage (docs/design.md §9). One CSV row per state, appended as it finishes (an
interrupted run resumes). The table at the end gives per size: states, tie-breaks proven by
milp and by the engine (certified), load stages certified, and the median and max seconds of
each method's tie-break. Runs with other ``--tree-rounds`` or ``--column-rounds`` need their
own ``--out``; a CSV written with other columns is refused rather than appended to.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from bench_exact import append_row, done_keys, parse_seeds, parse_sizes, state

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.core.verify import verify
from dtasm_opt.solvers import registry

ENGINE = "lagrangian"
COLUMNS = ("size", "seed", "step", "time_limit_s", "node_limit", "cloud_load_bytes", "load_status",
           "milp_stage2", "milp_stage2_s", "milp_migrated", "engine_stage2", "engine_proof",
           "engine_tie_break_s", "engine_highs_s", "rounds", "certified_load",
           "certified_migrations", "engine_migrated", "verified", "tree_status",
           "tree_rounds", "column_status", "column_rounds", "engine_decide_s")  # fmt: skip


def run_state(
    inst,
    seed: int,
    step: int,
    limit: float,
    nodes: int | None = None,
    tree: int | None = None,
    columns: int | None = None,
) -> dict:
    settings = MethodSettings(seed=seed, time_limit_s=limit, threads=1, node_limit=nodes)
    milp = judge(registry.make_method(registry.REFERENCE, settings), inst, step)
    engine = replace(settings, tree_rounds=tree, column_rounds=columns)
    sol = judge(registry.make_method(ENGINE, engine), inst, step)
    info = sol.info
    cert = info.get("certificate", {})
    problems = verify(inst, json.loads(json.dumps(sol.to_dict())))
    return {
        "cloud_load_bytes": sol.cloud_load_bytes,
        "load_status": sol.status,
        "milp_stage2": milp.info.get("stage2_status"),
        "milp_stage2_s": milp.info.get("stage2_s", 0.0),
        "milp_migrated": milp.metrics["migrated"],
        "engine_stage2": info.get("stage2_status"),
        "engine_proof": info.get("stage2_proof") or "highs",
        "engine_tie_break_s": info.get("tie_break_s", 0.0),
        "engine_highs_s": info.get("stage2_s", 0.0),
        "rounds": info.get("lagrangian_rounds", 0),
        "certified_load": "load" in cert,
        "certified_migrations": "migrations" in cert,
        "engine_migrated": sol.metrics["migrated"],
        "verified": not problems,
        "tree_status": info.get("tree_status", ""),  # empty: the tree search did not run
        "tree_rounds": info.get("tree_rounds", 0),
        "column_status": info.get("column_status", ""),  # empty: column generation did not run
        "column_rounds": info.get("column_rounds", 0),
        "engine_decide_s": sol.solve_time_s,  # the whole step: both stages and the bound
    }


def _proofs(rows: list[dict], proof: str) -> int:
    return sum(r["engine_stage2"] == "optimal" and r["engine_proof"] == proof for r in rows)


def summary(path: Path, limit: float, nodes: int | None) -> str:
    with open(path, newline="") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if float(r["time_limit_s"]) == limit and r["node_limit"] == str(nodes or "")
        ]
    lines = [
        f"time limit {limit:g} s per HiGHS stage"
        + (f", {nodes} nodes per stage" if nodes else "")
        + "; 1 thread",
        "| size | states | milp: tie-break proven | median (max) s | engine: proven | "
        "of which HiGHS / certificate / fixing / tree | with a certificate | median (max) s "
        "| whole step median (max) s | load certified | all verified |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sorted({r["size"] for r in rows}, key=lambda s: int(s.split("x")[0])):
        g = [r for r in rows if r["size"] == size]
        milp = [float(r["milp_stage2_s"]) for r in g]
        eng = [float(r["engine_tie_break_s"]) for r in g]
        step = [float(r["engine_decide_s"]) for r in g]
        lines.append(
            f"| {size} | {len(g)} | {sum(r['milp_stage2'] == 'optimal' for r in g)} | "
            f"{statistics.median(milp):.3g} ({max(milp):.3g}) | "
            f"{sum(r['engine_stage2'] == 'optimal' for r in g)} | "
            f"{_proofs(g, 'highs')} / {_proofs(g, 'certificate')} / {_proofs(g, 'fixing')} / "
            f"{_proofs(g, 'tree')} | "
            f"{sum(r['certified_migrations'] == 'True' for r in g)} | "
            f"{statistics.median(eng):.3g} ({max(eng):.3g}) | "
            f"{statistics.median(step):.3g} ({max(step):.3g}) | "
            f"{sum(r['certified_load'] == 'True' for r in g)} | "
            f"{all(r['verified'] == 'True' for r in g)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--sizes", default="200x8")
    p.add_argument("--seeds", default="1-5", help="e.g. 1-5 or 1,3")
    p.add_argument("--steps", default="5,10,20", help="later steps of MILP-greedy's rollout")
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds per HiGHS stage")
    p.add_argument("--node-limit", type=int, default=None, help="HiGHS nodes per stage")
    p.add_argument(
        "--tree-rounds",
        type=int,
        default=None,
        help="the engine's tree search budget (knapsack rounds; 0: none; default: the engine's)",
    )
    p.add_argument(
        "--column-rounds",
        type=int,
        default=None,
        help="the engine's column generation budget (knapsack rounds; 0: none; default: the "
        "engine's)",
    )
    p.add_argument("--out", default="bench_tiebreak.csv")
    args = p.parse_args(argv)
    out = Path(args.out)
    cache = out.with_suffix(".states")
    if out.exists() and out.stat().st_size:
        with open(out, newline="") as fh:
            header = next(csv.reader(fh), [])
        if tuple(header) != COLUMNS:
            p.error(f"--out {out}: written with other columns (an older version); give a new file")
    done = done_keys(out, COLUMNS[:5])
    for users, servers in parse_sizes(args.sizes):
        for seed in parse_seeds(args.seeds):
            for step in [int(s) for s in args.steps.split(",")]:
                key = (f"{users}x{servers}", str(seed), str(step), str(args.time_limit),
                       str(args.node_limit or ""))  # fmt: skip
                if key in done:
                    continue
                inst = state(users, servers, seed, step, cache)
                row = dict(zip(COLUMNS[:5], key, strict=True))
                row.update(
                    run_state(
                        inst,
                        seed,
                        step,
                        args.time_limit,
                        args.node_limit,
                        args.tree_rounds,
                        args.column_rounds,
                    )
                )
                append_row(out, row, COLUMNS)
                print(
                    f"{key[0]} seed {seed} step {step}: milp {row['milp_stage2']} in "
                    f"{row['milp_stage2_s']:.2f} s; engine {row['engine_stage2']} "
                    f"({row['engine_proof']}) in {row['engine_tie_break_s']:.2f} s, "
                    f"{row['rounds']} rounds"
                    + (
                        f", tree {row['tree_status']} ({row['tree_rounds']} rounds)"
                        if row["tree_status"]
                        else ""
                    ),
                    file=sys.stderr,
                )
    print(summary(out, args.time_limit, args.node_limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
