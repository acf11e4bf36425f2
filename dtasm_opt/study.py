"""Run a study: every cell (method x seed x sweep value) of a TOML spec, resumably.

    python -m dtasm_opt.study studies/fig6_users.toml [--out DIR] [--workers 2]
    python -m dtasm_opt.study studies/fig6_users.toml --backend ray [--address HOST:PORT]
    python -m dtasm_opt.study studies/fig4_training.toml --quick     # a smoke test

DIR (default ``studies/<name>/``; with ``--quick`` ``out/studies/<name>-quick/``) receives
``results.csv`` (tidy: one row per cell and step), ``manifest.json``, ``summary.md`` and PNG
plots. Rerunning the same command after an interruption resumes it: completed cells are
kept, never recomputed (see :mod:`dtasm_opt.studies.runner`). ``--report-only`` redraws the
summary and plots from the CSV. Specs: :mod:`dtasm_opt.studies.spec`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from dtasm_opt import cli
from dtasm_opt.core.limits import MAX_THREADS
from dtasm_opt.errors import InputError
from dtasm_opt.studies import plots, report
from dtasm_opt.studies.runner import BACKENDS, check_run, lock_folder, run_locked
from dtasm_opt.studies.spec import load

PROG = "python -m dtasm_opt.study"
EXIT_CELLS_FAILED = 1


def default_out(name: str, quick: bool) -> Path:
    return Path("out", "studies", f"{name}-quick") if quick else Path("studies", name)


def build_parser() -> cli.Parser:
    p = cli.make_parser(PROG, "Run a study spec: every method x seed x sweep value, resumably.")
    p.add_argument("spec", metavar="SPEC", help="a study spec (TOML), e.g. studies/gap.toml")
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output folder [studies/<name>/, or out/studies/<name>-quick/ with --quick]",
    )
    p.add_argument(
        "--backend", choices=BACKENDS, default="local", help="local process pool, or Ray tasks"
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address [none: start a local Ray of --workers CPUs]",
    )
    p.add_argument("--workers", type=cli.count(1, MAX_THREADS), default=1, help="parallel cells")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: few steps and seeds, capped solver time limits",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="only redraw summary.md and the plots from results.csv",
    )
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.address and args.backend != "ray":
        raise InputError("--address: only with --backend ray")
    spec = load(args.spec, quick=args.quick)
    out = Path(args.out) if args.out else default_out(spec.name, spec.quick)
    if not args.report_only:
        check_run(spec, out, args.backend, args.workers)
    elif not (out / "results.csv").exists():
        raise InputError(f"{out / 'results.csv'}: no results to report; run the study first")
    with lock_folder(out):  # the run and its report: one writer per folder
        return _run_and_report(spec, out, args)


def _run_and_report(spec, out: Path, args) -> int:
    run = None
    if not args.report_only:
        cells = len(spec.cells())
        print(
            f"{spec.name}: {cells} cells -> {out} ({args.backend}, {args.workers} workers)",
            file=sys.stderr,
        )
        run = run_locked(
            spec, out, backend=args.backend, workers=args.workers, address=args.address
        )
    results = out / "results.csv"
    if not results.exists():
        raise InputError(f"{results}: no results to report; run the study first")
    text = report.write_summary(spec, results, out / "summary.md", run)
    made = plots.write_plots(spec, results, out)
    print(text, file=sys.stderr)
    print(f"wrote {out / 'summary.md'} and {', '.join(p.name for p in made)}", file=sys.stderr)
    if run and run["failed"]:
        print(f"error: {len(run['failed'])} cells failed; rerun to retry them", file=sys.stderr)
        return EXIT_CELLS_FAILED
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
