"""MILP-greedy's rollout with ``milp`` against the same with the ``lagrangian`` engine: per step,
whether the tie-break (fewest migrations) was proven, how (HiGHS, a certificate, fixing), the
engine's bound and knapsack rounds, HiGHS's nodes and the decision time. Each method follows
its own trajectory on the same stream. Without
``--node-limit`` each keeps its own defaults (``milp``: the direct matrix and the clock; the
engine: the scaled matrix and 2,000 HiGHS nodes per stage).

    python benchmarks/bench_tiebreak_rollout.py [--users 200] [--servers 8] [--seed 1]
        [--steps 15] [--methods milp,lagrangian] [--time-limit 30] [--node-limit N]
        [--tree-rounds N] [--column-rounds N] [--out bench_tiebreak_rollout.csv]

One CSV row per method and step, appended as soon as the step is decided; beside the CSV,
``<out>.servers.json`` keeps each method's servers after its last row (a rollout's state is its
history, and the servers are all of it). An interrupted run continues every method from its
last row: a long rollout (500 steps at U = 200) loses at most the step in progress. The
table at the end: per method, steps, tie-breaks proven (by certificate), median, p90 and max
seconds per step, and migrations in all.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from bench_exact import append_row

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.solvers import registry

METHODS = (registry.REFERENCE, "lagrangian")
COLUMNS = ("users", "servers", "seed", "time_limit_s", "node_limit", "method", "step",
           "load_status", "tie_break", "proof", "certified", "migrated", "bound", "rounds",
           "highs_nodes", "decision_s")  # fmt: skip
KEY = COLUMNS[:5]  # the run's settings: rows with another key belong to another run


def rollout(args: argparse.Namespace, method: str, out: Path, done: list[dict]) -> list[dict]:
    """``method``'s rollout, continued after the rows in ``done`` (their servers from the
    side file), each new row appended to ``out`` as soon as its step is decided."""
    stream = generate_stream(Scenario(users=args.users, servers=args.servers), args.seed,
                             steps=args.steps)  # fmt: skip
    settings = MethodSettings(seed=args.seed, time_limit_s=args.time_limit, threads=1,
                              node_limit=args.node_limit, tree_rounds=args.tree_rounds,
                              column_rounds=args.column_rounds)  # fmt: skip
    policy = registry.make_method(method, settings)
    rows = list(done)
    if len(done) >= args.steps:
        return rows
    server = _servers(out, args, method, len(done))
    for t in range(len(done), args.steps):
        inst = stream.instance(t, server)
        t0 = time.perf_counter()
        sol = judge(policy, inst, t)
        info = sol.info
        row = {
            "users": args.users, "servers": args.servers, "seed": args.seed,
            "time_limit_s": args.time_limit, "node_limit": args.node_limit or "",
            "method": method, "step": t, "load_status": sol.status,
            "tie_break": info.get("stage2_status"), "proof": info.get("stage2_proof", ""),
            "certified": "migrations" in info.get("certificate", {}),
            "migrated": sol.metrics["migrated"], "bound": info.get("lagrangian_bound", ""),
            "rounds": info.get("lagrangian_rounds", ""),
            "highs_nodes": info.get("stage2_nodes", ""),
            "decision_s": time.perf_counter() - t0,
        }  # fmt: skip
        server = sol.final_server
        append_row(out, row, COLUMNS)
        _save_servers(out, args, method, t + 1, server)  # after the row: a kill between
        rows.append(row)  # the two redoes this step (its row is then dropped, see main)
        print(f"{method} step {t}: tie-break {row['tie_break']} {row['proof']} in "
              f"{row['decision_s']:.2f} s", file=sys.stderr)  # fmt: skip
    return rows


def _side(out: Path) -> Path:
    return Path(f"{out}.servers.json")


def _run_key(args: argparse.Namespace, method: str) -> str:
    key = "|".join(
        (str(args.users), str(args.servers), str(args.seed), str(args.time_limit),
         str(args.node_limit or ""), method)
    )  # fmt: skip
    # a run with its own tree or column budget is another run (the key of runs without one is
    # unchanged)
    if args.tree_rounds is not None:
        key += f"|tree={args.tree_rounds}"
    if args.column_rounds is not None:
        key += f"|columns={args.column_rounds}"
    return key


def _side_doc(out: Path) -> dict:
    doc = files.read_json(_side(out)) if _side(out).exists() else {}
    return doc if isinstance(doc, dict) else {}


def _saved(out: Path, args: argparse.Namespace, method: str) -> dict:
    """This run's entry in the side file: {"steps": rows covered, "server": [...]}, or {}."""
    entry = _side_doc(out).get(_run_key(args, method))
    return entry if isinstance(entry, dict) else {}


def _servers(out: Path, args: argparse.Namespace, method: str, steps: int) -> np.ndarray | None:
    """The servers after ``steps`` rows of this run (None at step 0: the stream's own)."""
    if steps == 0:
        return None
    entry = _saved(out, args, method)
    if entry.get("steps") != steps:
        raise SystemExit(f"{_side(out)}: no servers after step {steps - 1} of {method}; "
                         f"delete that method's rows from {out} to run it again")  # fmt: skip
    return np.asarray(entry["server"], dtype=np.int64)


def _save_servers(out: Path, args: argparse.Namespace, method: str, steps: int, server) -> None:
    doc = _side_doc(out)
    doc[_run_key(args, method)] = {"steps": steps, "server": np.asarray(server).tolist()}
    files.write_text_atomic(_side(out), json.dumps(doc) + "\n")


def _drop_rows(out: Path, key: tuple[str, ...], method: str, from_step: int) -> None:
    """Rewrite ``out`` without this run's rows of ``method`` from ``from_step`` on: a kill after
    a row was appended and before its servers were saved leaves one such row."""
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        mine = tuple(r[c] for c in KEY) == key and r["method"] == method
        if not (mine and int(r["step"]) >= from_step):
            w.writerow(r)
    files.write_text_atomic(out, text.getvalue())


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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--servers", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated, of: "
                   + ", ".join(METHODS))  # fmt: skip
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds per HiGHS stage")
    p.add_argument("--node-limit", type=int, default=None, help="HiGHS nodes per stage")
    p.add_argument(
        "--tree-rounds",
        type=int,
        default=None,
        help="the engine's tree search budget in knapsack rounds (0: none; default: the "
        "engine's); give each budget its own --out",
    )
    p.add_argument(
        "--column-rounds",
        type=int,
        default=None,
        help="the engine's column generation budget in knapsack rounds (0: none; default: the "
        "engine's); give each budget its own --out",
    )
    p.add_argument("--out", default="bench_tiebreak_rollout.csv")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        p.error(f"--methods: {', '.join(unknown) or 'none given'}; choose from "
                f"{', '.join(METHODS)}")  # fmt: skip
    out = Path(args.out)
    key = (str(args.users), str(args.servers), str(args.seed), str(args.time_limit),
           str(args.node_limit or ""))  # fmt: skip
    rows: list[dict] = []
    for method in methods:
        done: list[dict] = []
        if out.exists():
            with open(out, newline="") as fh:
                done = [r for r in csv.DictReader(fh)
                        if tuple(r[c] for c in KEY) == key and r["method"] == method]  # fmt: skip
        saved = int(_saved(out, args, method).get("steps", 0))
        if saved < len(done) < args.steps:  # a finished rollout needs no servers
            _drop_rows(out, key, method, saved)
            done = done[:saved]
        rows += rollout(args, method, out, done[: args.steps])
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
