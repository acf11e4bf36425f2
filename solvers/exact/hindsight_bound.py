"""Solve the hindsight model of :mod:`dtasm_opt.models.hindsight` with HiGHS: a certified
lower bound on the total cloud load that ANY policy reaches over a stream's first steps.

Each window's LP is solved (interior point without crossover by default); the reported bound is
the model's Lagrangian bound recomputed from HiGHS's row duals, valid for any duals. With
``mip`` the window's MILP follows and its dual bound (less a margin) is taken if higher.
Windows are solved independently; only their sum is a bound on the stream.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np

from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.options import option
from dtasm_opt.core.stream import Stream
from dtasm_opt.errors import InputError
from dtasm_opt.models.hindsight import (
    ABS_MARGIN_BYTES,
    COST_UNIT_BYTES,
    MIP_REL_MARGIN,
    WindowModel,
    build_window,
    lagrangian_bound,
)
from dtasm_opt.solvers.exact.highs_runtime import (
    ensure_threads,
    solver_log_on,
    solver_output,
    termination_name,
)

LP_SOLVERS = ("simplex", "ipm", "pdlp")
_ROWWISE = 2  # HiGHS MatrixFormat kRowwise
_MINIMIZE = 1  # HiGHS ObjSense kMinimize
_INTEGER = 1  # HiGHS HighsVarType kInteger


@dataclass(frozen=True)
class HindsightOptions:
    """How the bound is computed (the study keys of ``hindsight-bound``)."""

    window: int | None = option(None, "steps per window (default: the whole horizon)")
    mip: bool = option(False, "integer occupancy (else the LP relaxation)")
    lookback: int = option(0, "uncounted steps modelled before each window")
    lp_solver: str = option("ipm", "HiGHS LP solver", choices=LP_SOLVERS)


@dataclass(frozen=True)
class WindowBound:
    """A proven lower bound on the cloud load (bytes) of any policy over one window."""

    start: int
    steps: int
    bound_bytes: float
    status: str  # "optimal" (relaxation solved), "time_limit", "imprecise", "interrupted"
    solve_time_s: float
    lp_bound_bytes: float  # the certified LP bound (equal to bound_bytes for the LP)

    def to_dict(self) -> dict:
        return {
            "start": self.start,
            "steps": self.steps,
            "bound_bytes": self.bound_bytes,
            "status": self.status,
            "solve_time_s": self.solve_time_s,
        }


def _highs(model: WindowModel) -> highspy.Highs:
    with solver_output():
        h = highspy.Highs()
    h.setOptionValue("output_flag", solver_log_on())
    k = model.n_cols
    h.passModel(
        k,
        model.n_rows,
        int(model.a_value.shape[0]),
        _ROWWISE,
        _MINIMIZE,
        0.0,
        model.col_cost,
        np.zeros(k),
        np.ones(k),
        model.row_lower,
        model.row_upper,
        model.a_start,
        model.a_index,
        model.a_value,
        np.zeros(k, dtype=np.int32),  # continuous: the LP relaxation first
    )
    return h


def _run(h: highspy.Highs, options: dict, threads: int) -> str:
    for key, value in options.items():
        h.setOptionValue(key, value)
    h.setOptionValue("threads", threads)
    ensure_threads(threads)
    with solver_output():  # HiGHS's log, with --solver-log
        h.run()
    # kUnknown: IPX without crossover was imprecise; its duals still give a valid L(y).
    name = termination_name(h.getModelStatus())
    return "imprecise" if name == "error" else name


def solve_window(
    model: WindowModel,
    *,
    mip: bool = False,
    time_limit_s: float | None = None,
    threads: int = 1,
    lp_solver: str = "ipm",
) -> WindowBound:
    """Certified bound of one window: the LP's Lagrangian bound, then optionally the MILP's."""
    if lp_solver not in LP_SOLVERS:
        raise InputError(f"lp_solver: {lp_solver!r} is unknown, use one of {LP_SOLVERS}")
    t0 = time.perf_counter()
    h = _highs(model)
    opts: dict = {"solver": lp_solver}
    if lp_solver == "ipm":
        opts["run_crossover"] = "off"  # L(y) needs no basis: approximate duals are enough
    if time_limit_s is not None:
        opts["time_limit"] = float(time_limit_s)
    status = _run(h, opts, threads)
    sol = h.getSolution()
    duals = np.array(sol.row_dual) if sol.dual_valid else np.zeros(model.n_rows)
    lp_bound = max(0.0, lagrangian_bound(model, duals))  # cloud loads are >= 0
    bound = lp_bound
    if mip:
        k = model.n_cols
        h.changeColsIntegrality(k, np.arange(k, dtype=np.int32), np.full(k, _INTEGER, np.int32))
        opts = {"mip_rel_gap": 0.0, "solver": "choose"}
        if time_limit_s is not None:
            left = time_limit_s - (time.perf_counter() - t0)
            opts["time_limit"] = max(left, 1e-3)
        status = _run(h, opts, threads)
        dual = float(h.getInfo().mip_dual_bound) * COST_UNIT_BYTES
        if math.isfinite(dual):
            bound = max(bound, dual - MIP_REL_MARGIN * abs(dual) - ABS_MARGIN_BYTES)
    return WindowBound(
        start=model.start,
        steps=model.steps,
        bound_bytes=bound,
        status=status,
        solve_time_s=time.perf_counter() - t0,
        lp_bound_bytes=lp_bound,
    )


def window_spans(steps: int, window: int) -> list[tuple[int, int]]:
    """(start, steps) of consecutive windows of ``window`` steps covering [0, steps)."""
    if steps < 1 or window < 1:
        raise InputError(f"window: {window} steps over {steps} steps is invalid, need >= 1")
    return [(s, min(window, steps - s)) for s in range(0, steps, window)]


def solve_span(
    stream: Stream,
    start: int,
    steps: int,
    *,
    mip: bool = False,
    time_limit_s: float | None = None,
    threads: int = 1,
    lookback: int = 0,
    lp_solver: str = "ipm",
) -> WindowBound:
    """Bound of stream steps [start, start + steps): from the stream's initial servers when
    ``start`` is 0, else from a free state (after ``lookback`` uncounted steps)."""
    initial = stream.initial_server if start == 0 else None
    model = build_window(stream, start, steps, initial_server=initial, lookback=lookback)
    return solve_window(
        model, mip=mip, time_limit_s=time_limit_s, threads=threads, lp_solver=lp_solver
    )


def hindsight_bound(
    stream: Stream,
    steps: int | None = None,
    window: int | None = None,
    **options,
) -> tuple[float, list[WindowBound]]:
    """Total bound over the first ``steps`` steps (sum of independent window bounds)."""
    steps = stream.n_steps if steps is None else steps
    if steps > stream.n_steps:
        raise InputError(f"steps: {steps} exceeds the stream's {stream.n_steps} steps")
    spans = window_spans(steps, steps if window is None else window)
    bounds = [solve_span(stream, s, n, **options) for s, n in spans]
    return math.fsum(b.bound_bytes for b in bounds), bounds


@dataclass(frozen=True)
class HindsightBound:
    """The registry's ``hindsight-bound``: certified window bounds over a stream's first steps."""

    options: HindsightOptions
    time_limit_s: float | None = None  # per window
    threads: int = 1
    name: str = "hindsight-bound"

    def window(self, steps: int) -> int:
        """Steps per window over a horizon of ``steps`` (default: one window)."""
        return steps if self.options.window is None else min(self.options.window, steps)

    def windows(self, stream: Stream, steps: int) -> list[WindowBound]:
        """One certified bound per window of the first ``steps`` stream steps."""
        o = self.options
        return hindsight_bound(
            stream,
            steps,
            self.window(steps),
            mip=o.mip,
            time_limit_s=self.time_limit_s,
            threads=self.threads,
            lookback=o.lookback,
            lp_solver=o.lp_solver,
        )[1]


def make_bound(
    name: str, settings: MethodSettings, options: HindsightOptions | None = None
) -> HindsightBound:
    return HindsightBound(
        options or HindsightOptions(), settings.time_limit_s, settings.threads, name=name
    )
