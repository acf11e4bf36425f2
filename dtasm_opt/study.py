"""Run a study: every cell (method x seed x sweep value) of a TOML spec, resumably.

    python -m dtasm_opt.study fig6_users [--out DIR] [--workers 2]     # a shipped spec, by name
    python -m dtasm_opt.study my_spec.toml --backend ray [--address HOST:PORT]
    python -m dtasm_opt.study fig4_training --quick                   # a smoke test
    python -m dtasm_opt.study --list                                  # the shipped specs
    python -m dtasm_opt.study --status runs/fig6_users     # where a (running) study stands

SPEC is a TOML file or the name of a shipped spec (package data, so it works from any
folder). DIR (default ``runs/<name>/``, or ``runs/<name>-quick/`` with ``--quick``; the
shipped results under ``studies/`` are rewritten only when ``--out`` names them) receives
``results.csv`` (tidy: one row per cell and step), ``manifest.json``, ``summary.md`` and PNG
plots. Rerunning the same command after an interruption resumes it: completed cells are
kept, never recomputed (see :mod:`dtasm_opt.studies.folder`). ``--report-only`` redraws the
summary and plots from the CSV. Specs: :mod:`dtasm_opt.studies.spec`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from dtasm_opt import cli
from dtasm_opt.core.limits import MAX_THREADS
from dtasm_opt.core.wording import counted
from dtasm_opt.errors import InputError
from dtasm_opt.studies import plots, report
from dtasm_opt.studies.runner import BACKENDS, check_run, lock_folder, run_locked
from dtasm_opt.studies.spec import load
from dtasm_opt.studies.status import format_status, read_status

PROG = "python -m dtasm_opt.study"
EXIT_CELLS_FAILED = 1


def default_out(name: str, quick: bool) -> Path:
    return Path("runs", f"{name}-quick" if quick else name)


def shipped_specs() -> dict[str, Traversable]:
    """The specs shipped with the package (studies/*.toml), by name."""
    return {
        f.name.removesuffix(".toml"): f
        for f in resources.files("dtasm_opt.study_specs").iterdir()
        if f.name.endswith(".toml")
    }


def resolve_spec(text: str) -> Traversable | Path:
    """A spec file, or a shipped spec's name (a file of that name wins)."""
    path = Path(text)
    if path.exists() or path.suffix == ".toml" or "/" in text:
        return path
    specs = shipped_specs()
    if text not in specs:
        raise InputError(
            f"{text}: no such spec file or shipped spec; shipped: {', '.join(sorted(specs))}"
        )
    return specs[text]


def build_parser() -> cli.Parser:
    p = cli.make_parser(PROG, "Run a study spec: every method x seed x sweep value, resumably.")
    p.add_argument(
        "spec", metavar="SPEC", nargs="?", help="a spec file (TOML) or a shipped spec's name"
    )
    p.add_argument("--list", action="store_true", help="list the shipped specs and exit")
    p.add_argument(
        "--status",
        metavar="DIR",
        default=None,
        help="say where the study folder DIR stands (cells and rows complete, each unfinished "
        "cell's saved rows and pace, the run that holds it, exact steps proven) and exit; it "
        "only reads, so it is safe beside the run",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output folder [runs/<name>/, or runs/<name>-quick/ with --quick]",
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
        "--reuse",
        metavar="DIR",
        action="append",
        default=[],
        help="an earlier run's folder (repeatable): copy each cell whose method, options and "
        "scenario are unchanged instead of recomputing it (after editing one method's table)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="only redraw summary.md and the plots from results.csv",
    )
    p.add_argument(
        "--no-plots",
        action="store_true",
        help="write results.csv and summary.md but draw no plots (a part of a split study, "
        "a headless run); --report-only draws them later",
    )
    cli.add_output_options(p)
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name, f in sorted(shipped_specs().items()):
            print(f"{name:<22} {load(f).description}")
        return cli.EXIT_OK
    if args.status is not None:
        if args.spec is not None or args.reuse or args.report_only:
            raise InputError("--status: give only the study folder (it runs nothing)")
        print(format_status(read_status(args.status)))
        return cli.EXIT_OK
    if args.spec is None:
        raise InputError(f"SPEC: give a spec file or a shipped spec's name (see {PROG} --list)")
    if args.address and args.backend != "ray":
        raise InputError("--address: only with --backend ray")
    cli.apply_output_options(args)
    spec = load(resolve_spec(args.spec), quick=args.quick)
    out = Path(args.out) if args.out else default_out(spec.name, spec.quick)
    if not args.report_only:
        check_run(spec, out, args.backend, args.workers, args.reuse)
    elif args.reuse:
        raise InputError("--reuse: not with --report-only (it runs nothing)")
    elif not (out / "results.csv").exists():
        raise InputError(f"{out / 'results.csv'}: no results to report; run the study first")
    with lock_folder(out):  # the run and its report: one writer per folder
        return _run_and_report(spec, out, args)


def _run_and_report(spec, out: Path, args) -> int:
    run = None
    if not args.report_only:
        cells = counted(len(spec.cells()), "cell")
        workers = (
            f"a Ray cluster at {args.address}" if args.address else counted(args.workers, "worker")
        )
        cli.say(args, f"{spec.name}: {cells} -> {out} ({args.backend}, {workers})")
        bar = cli.progress_bar(args, "row")
        try:
            run = run_locked(
                spec,
                out,
                backend=args.backend,
                workers=args.workers,
                address=args.address,
                log=_cell_log(args, bar),
                on_progress=None if bar is None else _bar_progress(bar),
                reuse=args.reuse,
            )
        finally:
            if bar is not None:
                bar.close()
    results = out / "results.csv"
    if not results.exists():
        raise InputError(f"{results}: no results to report; run the study first")
    text = report.write_summary(spec, results, out / "summary.md", run)
    # Drawing is most of a small study's time (matplotlib's layout and rendering: 7.7 of 8.7 s
    # for the tests' tiny study on a loaded machine), and a part of a split study has no
    # figures worth drawing.
    made = [] if args.no_plots else plots.write_plots(spec, results, out)
    cli.say(args, text)
    if args.no_plots:  # any figures already there are an earlier run's
        drawn = " (no plots" + ("" if args.report_only else ": --report-only draws them") + ")"
    else:
        drawn = f" and {', '.join(p.name for p in made)}"
    cli.say(args, f"wrote {out / 'summary.md'}{drawn}")
    if run and run["failed"]:
        print(f"error: {len(run['failed'])} cells failed; rerun to retry them", file=sys.stderr)
        return EXIT_CELLS_FAILED
    return cli.EXIT_OK


def _cell_log(args, bar):
    """One line per finished cell where no progress bar shows (a log file), else none."""
    if args.quiet or bar is not None:
        return lambda _msg: None
    return lambda msg: print(msg, file=sys.stderr, flush=True)


def _bar_progress(bar: cli.ProgressBar):
    def progress(cells_done: int, cells: int, rows_done: int, rows: int) -> None:
        bar(rows_done, rows)
        bar.note(f"{cells_done}/{cells} cells")

    return progress


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
