"""The main job: generate the paper's default scenario, solve one step with every method that
is available, and print a comparison table (README, "Set-up: the two commands").

    python -m dtasm_opt.demo [--users 200] [--servers 8] [--seed 1] [--time-limit 30]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dtasm_opt import cli
from dtasm_opt.core.files import write_json
from dtasm_opt.core.generator import Scenario, generate_instance
from dtasm_opt.core.limits import MAX_SERVERS, MAX_USERS
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Solution, judge
from dtasm_opt.core.units import BYTES_PER_MB
from dtasm_opt.errors import InputError
from dtasm_opt.solvers.registry import make_method, policies

PROG = "python -m dtasm_opt.demo"


def parser() -> cli.Parser:
    p = cli.make_parser(PROG, "Solve one step of the paper's default scenario with every method.")
    p.add_argument("--users", type=cli.count(1, MAX_USERS), default=200, help="U")
    p.add_argument("--servers", type=cli.count(1, MAX_SERVERS), default=8, help="H")
    p.add_argument("--xi", type=cli.real(0.0), default=1.2, help="seamless-migration bound, s")
    p.add_argument("--seed", type=cli.seed, default=1, help="scenario and method seed")
    p.add_argument(
        "--time-limit", type=cli.real(0.0, strict=True), default=30.0, help="exact solvers, s"
    )
    p.add_argument("--out", default="out/demo", help="folder for the instance and solutions")
    cli.add_output_options(p)
    return p


def run(args: argparse.Namespace) -> list[Solution]:
    scenario = Scenario(users=args.users, servers=args.servers, xi_s=args.xi)
    inst = generate_instance(scenario, seed=args.seed, name=f"demo-u{args.users}-h{args.servers}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "instance.json", inst.to_dict())
    settings = MethodSettings(seed=args.seed, time_limit_s=args.time_limit)
    solutions = []
    for name in policies():
        try:
            method = make_method(name, settings)
        except (InputError, ModuleNotFoundError) as exc:
            cli.say(args, f"skipping {name}: {exc}")
            continue
        cli.say(args, f"solving with {name} ...")
        sol = judge(method, inst)
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
    cli.apply_output_options(args)
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
