"""``python -m dtasm_opt.bound``: a certified hindsight lower bound on a stream's cloud load.

    python -m dtasm_opt.bound stream.json.gz --steps 100 --window 10 --out bound.json
    python -m dtasm_opt.bound stream.json.gz --window 5 --mip --time-limit 60 --out b.json

No policy, however clever, ends the first T steps with less total cloud load than
``bound_bytes``. The ``dtasm-bound/1`` JSON goes to stdout or ``--out``, which is rewritten
after every window; ``--resume`` skips the windows it holds
(:mod:`dtasm_opt.experiments.bound_run`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dtasm_opt import cli
from dtasm_opt.core import files
from dtasm_opt.core.limits import MAX_STEPS, MAX_THREADS
from dtasm_opt.errors import InputError
from dtasm_opt.experiments.bound_run import run
from dtasm_opt.solvers.exact.hindsight_bound import LP_SOLVERS, WindowBound

PROG = "python -m dtasm_opt.bound"
DEFAULT_WINDOW = 10


def build_parser() -> cli.Parser:
    p = cli.make_parser(PROG, "A certified lower bound on any policy's total cloud load.")
    p.add_argument("stream", metavar="STREAM", help="dtasm-stream/1 file (.json[.gz])")
    p.add_argument(
        "--steps", type=cli.count(1, MAX_STEPS), default=None, help="default: the stream's"
    )
    p.add_argument(
        "--window", type=cli.count(1, MAX_STEPS), default=DEFAULT_WINDOW, help="steps/window"
    )
    p.add_argument("--mip", action="store_true", help="integer occupancy (else the LP)")
    p.add_argument(
        "--time-limit",
        type=cli.real(0.0, strict=True),
        default=None,
        help="s per window (none: no limit)",
    )
    p.add_argument(
        "--lookback",
        type=cli.count(0, MAX_STEPS),
        default=0,
        help="uncounted steps before each window",
    )
    p.add_argument("--lp-solver", choices=LP_SOLVERS, default="ipm", help="HiGHS LP solver")
    p.add_argument("--threads", type=cli.count(1, MAX_THREADS), default=1, help="HiGHS threads")
    p.add_argument("--out", metavar="JSON", default=None, help="write (and update) it here")
    p.add_argument("--resume", action="store_true", help="skip the windows --out holds")
    cli.add_output_options(p)
    return p


def reporter(bar: cli.ProgressBar):
    """Each solved window moves the bar; the bound so far stands beside it."""

    def report(w: WindowBound, done: int, total: int, so_far: float, seconds: float) -> None:
        bar(done, total)
        bar.note(f"bound so far {cli.mb(so_far)}")

    return report


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.resume and args.out is None:
        raise InputError("--resume: needs --out")
    stream = files.read_stream(args.stream)
    steps = stream.n_steps if args.steps is None else args.steps
    out = None if args.out is None else files.check_output(args.out)
    options = {
        "mip": args.mip,
        "time_limit_s": args.time_limit,
        "threads": args.threads,
        "lookback": args.lookback,
        "lp_solver": args.lp_solver,
    }
    cli.apply_output_options(args)
    bar = cli.progress_bar(args, "window")
    on_window = None if bar is None else reporter(bar)
    try:
        doc = run(stream, steps, args.window, options, out=out, resume=args.resume,
                  on_window=on_window)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    if out is None:
        sys.stdout.write(cli.for_terminal(files.dumps(doc)))
        sys.stdout.flush()
    else:
        files.write_json(out, doc)
    cli.say(
        args,
        f"bound {cli.mb(doc['bound_bytes'])} over {steps} steps "
        f"({doc['relaxation']}, {len(doc['windows'])} windows, {doc['solve_time_s']:.1f} s)",
    )
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
