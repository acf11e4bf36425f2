"""Re-run cells of a shipped study with the current code and compare with its results.csv.

    python studies/check_reproduction.py studies/fig6_users.toml \
        --cells "nearest|seed=1|users=200" "milp|seed=2|users=120" --steps 50

Each named cell (its key as in ``cells.jsonl``: ``method|seed=S[|axis=value]``) is run again for
its first ``--steps`` steps (a stream's first steps do not depend on its length, so a short
run reproduces the first rows of a long one) and every column but the timing ones is
compared with the committed rows, cell by cell. Exact cells reproduce only where no
wall-clock limit bound the solver (every step ``optimal`` and the tie-break stage finished);
the script says so next to each cell. Exit status 1 if any compared row differs.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core import records
from dtasm_opt.studies.cells import run_cell
from dtasm_opt.studies.spec import Cell, Spec, format_value, load

ROOT = Path(__file__).resolve().parent


def find_cell(spec: Spec, key: str) -> Cell:
    for cell in spec.cells():
        if cell.key(spec.axis) == key:
            return cell
    raise SystemExit(f"{key!r}: no such cell in {spec.name}")


def shortened(spec: Spec, label: str, steps: int) -> Spec:
    """The spec with ``label`` run for ``steps`` steps (no greedy evaluation after training)."""
    methods = tuple(
        replace(m, options={**m.options, "steps": steps, "eval_steps": 0})
        if m.label == label
        else m
        for m in spec.methods
    )
    return replace(spec, methods=methods)


def same(a: str, b: object) -> bool:
    """A committed CSV cell against a fresh value, compared as the CSV writes it."""
    fresh = records.cell(b)
    if a == fresh:
        return True
    try:  # both numbers, e.g. "0.0" against "0"
        return math.isclose(float(a), float(fresh), rel_tol=0.0, abs_tol=0.0)
    except ValueError:
        return False


def compare(spec: Spec, key: str, steps: int) -> tuple[int, list[str]]:
    cell = find_cell(spec, key)
    committed = [
        r
        for r in records.read_rows(ROOT / spec.name / "results.csv")
        if r["method"] == cell.method
        and int(r["seed"]) == cell.seed
        and (spec.axis is None or r[spec.axis] == format_value(cell.value))
    ][:steps]
    # A bound's rows are windows: its horizon is the steps they cover.
    windows = [r.get("window_steps") or "" for r in committed]
    horizon = sum(map(int, windows)) if all(windows) and windows else len(committed)
    fresh = run_cell(shortened(spec, cell.method, horizon), cell)
    problems = []
    for old, new in zip(committed, fresh, strict=True):
        for col, value in new.items():
            if col in records.TIMING_COLUMNS:
                continue
            if not same(old[col], value):
                problems.append(f"step {old['step']} {col}: committed {old[col]!r}, now {value!r}")
    return len(committed), problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("spec", type=Path)
    p.add_argument("--cells", nargs="+", required=True, help="cell keys, as in cells.jsonl")
    p.add_argument("--steps", type=int, default=50, help="first steps of each cell to compare")
    args = p.parse_args(argv)
    spec = load(args.spec)
    bad = 0
    for key in args.cells:
        n, problems = compare(spec, key, args.steps)
        verdict = "identical" if not problems else f"{len(problems)} differences"
        print(f"{spec.name} {key}: {n} rows, {verdict} (timing columns excluded)")
        for line in problems[:5]:
            print(f"    {line}")
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
