"""``python -m dtasm_opt.rollout``: every method on the same stream, one CSV row per step.

    python -m dtasm_opt.rollout stream.json.gz --methods nearest,danearest --out results.csv

The rollout itself (semantics, resume protocol) is :mod:`dtasm_opt.experiments.rollout`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dtasm_opt import cli
from dtasm_opt.core import files, records
from dtasm_opt.core.limits import MAX_STEPS
from dtasm_opt.experiments.rollout import format_summary, run, summarize
from dtasm_opt.solvers.registry import available_methods, parse_methods

PROG = "python -m dtasm_opt.rollout"


def build_parser() -> cli.Parser:
    p = cli.make_parser(PROG, "Run methods on the same stream; one CSV row per method and step.")
    p.add_argument("stream", metavar="STREAM", help="dtasm-stream/1 file (.json[.gz])")
    p.add_argument(
        "--methods",
        required=True,
        help=f"comma-separated method names: {', '.join(available_methods())}",
    )
    p.add_argument("--out", required=True, metavar="CSV", help="the step records")
    p.add_argument(
        "--steps",
        type=cli.count(1, MAX_STEPS),
        default=None,
        help="steps (default: the stream's length)",
    )
    cli.add_solver_options(p, time_limit_default=None)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    cli.add_output_options(p)
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    names = parse_methods(args.methods)  # unknown names are refused before any file is made
    stream = files.read_stream(args.stream)
    settings = cli.solver_settings(args)
    cli.apply_output_options(args)
    progress = cli.progress_bar(args, "step")
    try:
        run(
            stream,
            names,
            args.out,
            steps=args.steps,
            settings=settings,
            resume=args.resume,
            on_step=progress,
        )
    except KeyboardInterrupt:
        print(f"{args.out}: stopped; rerun with --resume to continue", file=sys.stderr)
        raise
    finally:
        if progress is not None:
            progress.close()
    cli.say(args, format_summary(summarize(records.read_rows(args.out))))
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
