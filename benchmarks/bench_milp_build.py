"""Build time of the per-step MILP: Pyomo (build + translate + load into HiGHS) against the
direct highspy matrix build (CSR arrays + passModel), measured side by side in one run.

    .venv/bin/python benchmarks/bench_milp_build.py [--repeats 5] [--seeds 3]

Both timings start from the same :class:`~dtasm_opt.models.step_milp.StepProblem` (the pair
enumeration, shared by both, is timed apart). Prints one row per size with medians in ms and
the ratio Pyomo / direct; ``--json`` prints the rows as JSON instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core.generator import Scenario, generate_instance
from dtasm_opt.models.step_problem import step_problem
from dtasm_opt.solvers.exact.highs_direct import DirectBackend
from dtasm_opt.solvers.exact.highs_pyomo import PyomoBackend
from dtasm_opt.solvers.exact.highs_runtime import solver_output

SIZES = ((50, 4), (200, 8), (1000, 16))


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(users: int, servers: int, seeds: int, repeats: int) -> dict:
    """Median build times (s) over seeds x repeats, alternating the two builders."""
    pairs_s, direct_s, pyomo_s, n_pairs = [], [], [], []
    for seed in range(seeds):
        inst = generate_instance(Scenario(users=users, servers=servers), seed)
        for _ in range(repeats):
            pairs_s.append(_time(lambda inst=inst: step_problem(inst)))
            problem = step_problem(inst)
            n_pairs.append(problem.n_pairs)
            direct_s.append(_time(lambda p=problem: DirectBackend().build(p)))
            pyomo_s.append(_time(lambda p=problem: PyomoBackend().build(p)))
    direct, pyomo = statistics.median(direct_s), statistics.median(pyomo_s)
    return {
        "users": users,
        "servers": servers,
        "pairs": int(statistics.median(n_pairs)),
        "pairs_ms": 1e3 * statistics.median(pairs_s),
        "direct_ms": 1e3 * direct,
        "pyomo_ms": 1e3 * pyomo,
        "ratio": pyomo / direct,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    with solver_output():  # HiGHS's banner, printed once per process, kept off stdout
        DirectBackend().build(step_problem(generate_instance(Scenario(users=5, servers=2), 0)))
    rows = [measure(u, h, args.seeds, args.repeats) for u, h in SIZES]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(
        f"{'U':>5} {'H':>3} {'pairs':>6} {'pairs ms':>9} {'direct ms':>10} "
        f"{'pyomo ms':>9} {'pyomo/direct':>13}"
    )
    for r in rows:
        print(
            f"{r['users']:>5} {r['servers']:>3} {r['pairs']:>6} {r['pairs_ms']:>9.2f} "
            f"{r['direct_ms']:>10.2f} {r['pyomo_ms']:>9.1f} {r['ratio']:>13.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
