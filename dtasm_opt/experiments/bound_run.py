"""The certified hindsight bound of a stream, window by window, as a resumable file.

No policy, however clever, ends the first T steps with less total cloud load than
``bound_bytes`` (see :mod:`dtasm_opt.models.hindsight` for the model and why it is valid). The
horizon is cut into windows of W steps solved independently from a free state (the first from
the stream's initial servers); only the total is a bound, not per-step values.

The ``dtasm-bound/1`` document is rewritten atomically after every window (``"complete":
false`` until the last; a partial total is still a valid, weaker bound since cloud loads are
>= 0), and a resumed run skips the windows the file already holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from dtasm_opt.core import files
from dtasm_opt.core.fingerprint import stream_fingerprint
from dtasm_opt.core.locks import OutputLock
from dtasm_opt.core.stream import Stream
from dtasm_opt.errors import InputError
from dtasm_opt.solvers.exact.hindsight_bound import WindowBound, solve_span, window_spans

BOUND_FORMAT = "dtasm-bound/1"
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
    on_window: Callable[[WindowBound, int, int, float, float], None] | None = None,
) -> dict:
    """Solve every window not yet in ``out`` (with ``resume``); return the final document.
    ``on_window(window, done, total, bound so far, seconds)`` reports each solved window."""
    if steps > stream.n_steps:
        raise InputError(f"--steps: {steps} exceeds the stream's {stream.n_steps} steps")
    if out is None:
        return _run(stream, steps, window, options, None, False, on_window)
    with OutputLock(out):
        return _run(stream, steps, window, options, out, resume, on_window)


def _run(
    stream: Stream,
    steps: int,
    window: int,
    options: dict,
    out: Path | None,
    resume: bool,
    on_window: Callable[[WindowBound, int, int, float, float], None] | None,
) -> dict:
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
        if on_window is not None:
            on_window(w, len(windows), len(spans), doc["bound_bytes"], time.perf_counter() - t0)
    return document(stream, steps, window, options, windows)
