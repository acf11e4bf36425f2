"""The main job: generate the paper's default scenario, solve one step with every method that
is available, and print a comparison table (README, "Run the main job").

    python -m dtasm_opt.demo [--users 200] [--servers 8] [--seed 1] [--time-limit 30]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dtasm_opt import cli
from dtasm_opt.errors import InputError
from dtasm_opt.files import write_json
from dtasm_opt.generator import Scenario, generate_instance
from dtasm_opt.methods import MethodSettings, make_method
from dtasm_opt.simulator import BYTES_PER_MB
from dtasm_opt.solution import Solution, evaluate

DEMO_METHODS = ("womig-stable", "womig-dynamic", "random", "nearest", "danearest", "milp", "cpsat")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dtasm_opt.demo", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--users", type=int, default=200, help="U (default 200)")
    p.add_argument("--servers", type=int, default=8, help="H (default 8)")
    p.add_argument("--xi", type=float, default=1.2, help="seamless-migration bound, s")
    p.add_argument("--seed", type=int, default=1, help="scenario and method seed")
    p.add_argument("--time-limit", type=float, default=30.0, help="exact solvers, s per method")
    p.add_argument("--out", default="out/demo", help="folder for the instance and solutions")
    return p


def run(args: argparse.Namespace) -> list[Solution]:
    scenario = Scenario(users=args.users, servers=args.servers, xi_s=args.xi)
    inst = generate_instance(scenario, seed=args.seed, name=f"demo-u{args.users}-h{args.servers}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "instance.json", inst.to_dict())
    settings = MethodSettings(seed=args.seed, time_limit_s=args.time_limit)
    solutions = []
    for name in DEMO_METHODS:
        try:
            method = make_method(name, settings)
        except (InputError, ModuleNotFoundError) as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        print(f"solving with {name} ...", file=sys.stderr)
        sol = evaluate(method, inst)
        write_json(out / f"solution-{name}.json", sol.to_dict())
        solutions.append(sol)
    return solutions


def table(solutions: list[Solution]) -> str:
    head = (
        f"{'method':<14} {'status':<10} {'cloud MB':>9} {'bound MB':>9} {'gap':>8} "
        f"{'migrated':>8} {'failed':>6} {'rejected':>8} {'on edge':>7} {'time s':>8}"
    )
    lines = [head, "-" * len(head)]
    for s in solutions:
        bound = "-" if s.bound_bytes is None else f"{s.bound_bytes / BYTES_PER_MB:9.3f}"
        gap = "-" if s.gap is None else f"{s.gap:8.2e}"
        m = s.metrics
        lines.append(
            f"{s.method:<14} {s.status:<10} {s.cloud_load_bytes / BYTES_PER_MB:9.3f} "
            f"{bound:>9} {gap:>8} {m['migrated']:8d} {m['migration_failed']:6d} "
            f"{m['rejected']:8d} {m['users_on_edge']:7d} {s.solve_time_s:8.3f}"
        )
    return "\n".join(lines)


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    solutions = run(args)
    print(
        f"One step of the default scenario (U={args.users}, H={args.servers}, xi={args.xi} s, "
        f"seed {args.seed}); loads in MB of 2^20 bytes; files in {args.out}/"
    )
    print(table(solutions))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
