"""The headline optimality-gap table of studies/README.md, from the `gap` and `gap_u280` studies.

    python studies/gap_table.py [SPEC ...] [--quick]   # default: studies/gap.toml gap_u280.toml

Each SPEC's results are read from its default folder (studies/<name>/, or with --quick the
smoke-test folder runs/<name>-quick/ of `python -m dtasm_opt.study NAME --quick`).

For each study and method: the mean cloud load per step over the study's steps (the same
steps and states for every method of a seed), its paired difference from MILP-greedy and
from the certified hindsight bound (mean and 95 % interval across seeds), the ratios of the
seed-summed loads, and, where the study solved it, the difference from the per-step optimum
from the method's own states. TD3 appears as its greedy policy after training (td3-greedy):
its training rows are other steps of the stream.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.solvers.registry import REFERENCE, label
from dtasm_opt.studies.cells import GREEDY_SUFFIX
from dtasm_opt.studies.report import bound_table, fmt, load_cells, summarize
from dtasm_opt.studies.spec import load

ROOT = Path(__file__).resolve().parent
ORDER = ("womig-stable", "womig-dynamic", "random", "nearest", "danearest", "td3-greedy", "milp")


def display(method: str) -> str:
    """The paper's name of a study's method label (a trained agent's greedy rollout too)."""
    if method.endswith(GREEDY_SUFFIX):
        return f"{label(method.removesuffix(GREEDY_SUFFIX))} (greedy)"
    return label(method)


def rows(spec_path: Path, quick: bool) -> list[list[str]]:
    spec = load(spec_path, quick=quick)
    folder = Path("runs", f"{spec.name}-quick") if quick else ROOT / spec.name
    table, _ = summarize(spec, folder / "results.csv")
    by_method = {r["method"]: r for r in table}
    bounds = {r["method"]: r for r in bound_table(spec, load_cells(folder / "results.csv", None))}
    users = spec.scenario.get("users")
    out = []
    for method in ORDER:
        r, b = by_method.get(method), bounds.get(method)
        if r is None or b is None:
            continue
        out.append(
            [
                str(users or folder.name),
                display(method),
                fmt(b["cloud_mb"]),
                fmt(r.get("vs_reference_mb")) if method != REFERENCE else "0",
                fmt(r.get("vs_reference_ratio")) if method != REFERENCE else "1",
                fmt(r.get("vs_opt_mb")),
                fmt(b["bound_mb"][0]),
                fmt(b["vs_bound_mb"]),
                fmt(b["vs_bound_ratio"]),
            ]
        )
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("specs", nargs="*", type=Path, help="study specs [gap.toml gap_u280.toml]")
    p.add_argument("--quick", action="store_true", help="the smoke-test folders runs/<name>-quick/")
    args = p.parse_args(argv)
    quick = args.quick
    specs = args.specs or [ROOT / "gap.toml", ROOT / "gap_u280.toml"]
    heads = [
        "U",
        "method",
        "cloud MB",
        "- MILP-greedy MB",
        "/ MILP-greedy",
        "- step-opt MB",
        "bound MB",
        "- bound MB",
        "/ bound",
    ]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    for spec_path in specs:
        for row in rows(spec_path, quick):
            print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
