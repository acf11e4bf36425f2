"""``python -m dtasm_opt.bound``: a certified hindsight lower bound on a stream's cloud load.

    python -m dtasm_opt.bound stream.json.gz --steps 100 --window 10 --out bound.json
    python -m dtasm_opt.bound stream.json.gz --window 5 --mip --time-limit 60 --out b.json

No policy, however clever, ends the first T steps with less total cloud load than
``bound_bytes`` (see :mod:`dtasm_opt.models.hindsight` for the model and why it is valid).
The horizon is cut into windows of W steps solved independently from a free state (the first
from the stream's initial servers); only the total is a bound, not per-step values.

The ``dtasm-bound/1`` JSON goes to stdout or ``--out``; ``--out`` is rewritten atomically
after every window (``"complete": false`` until the last; a partial total is still a valid,
weaker bound since cloud loads are >= 0) and ``--resume`` skips the windows it holds.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dtasm_opt import cli, files
from dtasm_opt.errors import InputError
from dtasm_opt.models.hindsight import LP_SOLVERS, WindowBound, solve_span, window_spans
from dtasm_opt.rollout import stream_fingerprint
from dtasm_opt.simulator import BYTES_PER_MB
from dtasm_opt.stream import Stream

PROG = "python -m dtasm_opt.bound"
BOUND_FORMAT = "dtasm-bound/1"
DEFAULT_WINDOW = 10
_IDENTITY = ("stream", "fingerprint", "steps", "window", "relaxation", "lookback", "lp_solver")


def document(
    stream: Stream, steps: int, window: int, options: dict, windows: list[WindowBound]
) -> dict:
    """The ``dtasm-bound/1`` document for the windows solved so far."""
    return {
        "format": BOUND_FORMAT,
        "stream": stream.name,
        "fingerprint": stream_fingerprint(stream),
        "steps": steps,
        "window": window,
        "relaxation": "mip" if options["mip"] else "lp",
        "lookback": options["lookback"],
        "lp_solver": options["lp_solver"],
        "complete": len(windows) == len(window_spans(steps, window)),
        "bound_bytes": math.fsum(w.bound_bytes for w in windows),
        "windows": [w.to_dict() for w in windows],
        "solve_time_s": math.fsum(w.solve_time_s for w in windows),
    }


def resumed_windows(path: Path, fresh: dict) -> list[WindowBound]:
    """The windows held by an earlier ``--out`` of the same run; refuse another run's file."""
    doc = files.read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != BOUND_FORMAT:
        raise InputError(f"{path}: not a {BOUND_FORMAT} file; cannot resume it")
    for key in _IDENTITY:
        if doc.get(key) != fresh[key]:
            raise InputError(
                f"{path}: written for another {key} ({doc.get(key)!r}, now {fresh[key]!r}); "
                "cannot resume it with these arguments"
            )
    spans = window_spans(fresh["steps"], fresh["window"])
    out = []
    try:
        for (start, n), w in zip(spans, doc["windows"], strict=False):
            if (w["start"], w["steps"]) != (start, n):
                raise ValueError(f"window {w['start']}+{w['steps']} out of order")
            out.append(WindowBound(start, n, float(w["bound_bytes"]), str(w["status"]),
                                   float(w["solve_time_s"]), float("nan")))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: damaged windows ({exc}); delete it to start again") from None
    return out


def run(
    stream: Stream,
    steps: int,
    window: int,
    options: dict,
    *,
    out: Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> dict:
    """Solve every window not yet in ``out`` (with ``resume``); return the final document."""
    if steps > stream.n_steps:
        raise InputError(f"--steps: {steps} exceeds the stream's {stream.n_steps} steps")
    spans = window_spans(steps, window)
    windows: list[WindowBound] = []
    if resume and out is not None and out.exists():
        windows = resumed_windows(out, document(stream, steps, window, options, []))
    for start, n in spans[len(windows) :]:
        t0 = time.perf_counter()
        w = solve_span(stream, start, n, **options)
        windows.append(w)
        doc = document(stream, steps, window, options, windows)
        if out is not None:
            files.write_json(out, doc)
        if progress:
            print(
                f"window {len(windows)}/{len(spans)} steps [{start}, {start + n}): "
                f"{w.bound_bytes / BYTES_PER_MB:.3f} MB ({w.status}, "
                f"{time.perf_counter() - t0:.1f} s); total so far "
                f"{doc['bound_bytes'] / BYTES_PER_MB:.3f} MB",
                file=sys.stderr,
            )
    return document(stream, steps, window, options, windows)


def build_parser() -> cli.Parser:
    p = cli.make_parser(PROG, "A certified lower bound on any policy's total cloud load.")
    p.add_argument("stream", metavar="STREAM", help="dtasm-stream/1 file (.json[.gz])")
    p.add_argument("--steps", type=cli.count(1), default=None, help="default: the stream's")
    p.add_argument("--window", type=cli.count(1), default=DEFAULT_WINDOW, help="steps/window")
    p.add_argument("--mip", action="store_true", help="integer occupancy (else the LP)")
    p.add_argument(
        "--time-limit", type=cli.real(0.0, strict=True), default=None, help="s per window"
    )
    p.add_argument(
        "--lookback", type=cli.count(0), default=0, help="uncounted steps before each window"
    )
    p.add_argument("--lp-solver", choices=LP_SOLVERS, default="ipm", help="HiGHS LP solver")
    p.add_argument("--threads", type=cli.count(1), default=1, help="HiGHS threads")
    p.add_argument("--out", metavar="JSON", default=None, help="write (and update) it here")
    p.add_argument("--resume", action="store_true", help="skip the windows --out holds")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.resume and args.out is None:
        raise InputError("--resume: needs --out")
    stream = files.read_stream(args.stream)
    steps = stream.n_steps if args.steps is None else args.steps
    out = None if args.out is None else Path(args.out)
    if out is not None and not out.parent.is_dir():
        raise InputError(f"--out: folder {out.parent} does not exist")
    options = {
        "mip": args.mip,
        "time_limit_s": args.time_limit,
        "threads": args.threads,
        "lookback": args.lookback,
        "lp_solver": args.lp_solver,
    }
    doc = run(stream, steps, args.window, options, out=out, resume=args.resume,
              progress=not args.quiet)  # fmt: skip
    if out is None:
        sys.stdout.write(files.dumps(doc))
        sys.stdout.flush()
    else:
        files.write_json(out, doc)
    print(
        f"bound {doc['bound_bytes'] / BYTES_PER_MB:.3f} MB over {steps} steps "
        f"({doc['relaxation']}, {len(doc['windows'])} windows, {doc['solve_time_s']:.1f} s)",
        file=sys.stderr,
    )
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
