"""OR-Tools CP-SAT as the exact method ``cpsat`` and as a knapsack solver for P3.

The per-step problem is the GAP of docs/design.md §3 over models/pairs.py's admissible pairs,
modelled in integers by models/cpsat_model.py (kHz weights, 1-bit loads; read its docstring
for the rounding argument). ``solve_step`` runs up to three CP-SAT solves, each with its own
``max_time_in_seconds`` (so the wall time can reach three time limits), ``num_workers`` and
``random_seed``:

1. Stage 1, on the CONSERVATIVE model (weights rounded up, capacities down): maximise the
   served load. Every solution fits for the real numbers, so the simulator admits every
   assigned user and the action's cloud load is the model's (to the load rounding).
2. Bound, on the RELAXED model (weights down, capacities up; every real solution is one of
   its solutions), hinted with stage 1's assignment and stopped as soon as its best bound
   reaches stage 1's objective. Its best bound, in 1-bit units with loads rounded up, is an
   upper bound on the real served load; ``bound_bytes`` = total load - that bound (and never
   more than the load of the users that have no admissible pair), less a relative 4*U*eps
   of the total so that float summation in the simulator cannot push it above the optimum.
   It is skipped, and the bound is exact, when stage 1 serves every user that has a pair.
3. Stage 2 (on by default), on the conservative model: keep the served load >= stage 1's
   (in units) and minimise migrations, hinted with stage 1's assignment (field notes: a
   single weighted objective is far worse than two stages).

Status: "optimal" when stage 1 serves every user with a pair, or its objective reaches the
relaxed bound: then no action serves more than stage 1's action plus its rounding slack
(< 1 bit per served user: ceil(L) - L summed over them, reported as ``info["slack_bits"]``,
against 4e6-8.6e6 bits per user), so the gap computed from ``bound_bytes`` is that slack,
near 1e-6 relative, not 0. Otherwise "work_limit" when a solve stopped on its deterministic
limit (``max_deterministic_time``: with one worker the same stop on every run), "time_limit"
when one stopped on its wall-clock limit, else "feasible" (the roundings disagree or ``gap``
> 0 stopped the search). "Load-optimal" in stage 2 carries the same tolerance. The CP-SAT
objective only guides the search: the reported cloud load is always the simulator's
evaluation of the returned action.

``gap`` (docs/design.md's relative gap on the cloud load) stops stage 1 through a callback once
(bound - served) <= gap * (total - served) in units (CP-SAT's own gap limits measure the
served load instead); the same callback stops it as soon as every user with a pair is
served, which needs no proof (measured: CP-SAT spent 4 s proving it at (40, 4)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from dtasm_opt.core import simulator
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.knapsack import fits
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Decision
from dtasm_opt.errors import InputError
from dtasm_opt.models.cpsat_model import (
    BITS_PER_LOAD_UNIT,
    CONSERVATIVE,
    HZ_PER_UNIT,
    RELAXED,
    StepModel,
    build_knapsack_model,
    build_step_model,
    scale_loads,
)
from dtasm_opt.models.pairs import Pairs, action_from_assignment, admissible_pairs

DEFAULT_TIME_LIMIT_S = 60.0  # per CP-SAT solve when the settings give none
_STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.MODEL_INVALID: "model_invalid",
    cp_model.UNKNOWN: "unknown",
}


@dataclass(frozen=True)
class CpsatOptions:
    """How to run CP-SAT; every solve gets its own time limit."""

    time_limit_s: float = DEFAULT_TIME_LIMIT_S  # max_time_in_seconds of each CP-SAT solve
    threads: int = 1  # num_workers (1 is deterministic for a given seed)
    seed: int = 0  # random_seed
    gap: float = 0.0  # relative gap on the cloud load at which stage 1 stops (0: prove)
    second_stage: bool = True  # fewest migrations among load-optimal assignments
    prove_bound: bool = True  # solve the relaxed model for a valid bound
    # max_deterministic_time of each solve: a work limit, the same stop on every run (with
    # one worker); None: only the wall-clock limit
    deterministic_limit: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise InputError(f"time_limit_s: {self.time_limit_s} is invalid, must be > 0")
        d = self.deterministic_limit
        if d is not None and not (math.isfinite(d) and d > 0):
            raise InputError(f"deterministic_limit: {d} is invalid, must be > 0")
        if int(self.threads) != self.threads or self.threads < 1:
            raise InputError(f"threads: {self.threads} is invalid, must be an integer >= 1")
        if not (math.isfinite(self.gap) and self.gap >= 0):
            raise InputError(f"gap: {self.gap} is invalid, must be >= 0")


@dataclass(frozen=True)
class _Run:
    """One CP-SAT solve: its status, the Boolean values (None without a solution)."""

    status: cp_model.CpSolverStatus
    values: np.ndarray | None
    bound: float  # best objective bound (an upper bound: every model here is maximised first)
    wall_s: float
    stopped_by_us: bool  # our stop rule ended the search (not the time limit)
    by_work: bool = False  # the deterministic (work) limit, not the wall clock, ended it

    @property
    def name(self) -> str:
        return _STATUS.get(self.status, str(self.status))

    @property
    def stop(self) -> str | None:
        """The limit that ended an unfinished search ("work_limit" or "time_limit"), None
        when the search finished or our stop rule ended it."""
        if self.status not in (cp_model.FEASIBLE, cp_model.UNKNOWN) or self.stopped_by_us:
            return None
        return "work_limit" if self.by_work else "time_limit"


class _StopRule(cp_model.CpSolverSolutionCallback):
    """Stops the search once ``rule(best objective, best bound)`` holds."""

    def __init__(self, solver: cp_model.CpSolver, rule: Callable[[float, float], bool]):
        super().__init__()
        self.solver, self.rule = solver, rule
        self.best, self.fired = -math.inf, False

    def on_solution_callback(self) -> None:
        self.best = self.objective_value
        self.check(self.best_objective_bound)

    def check(self, bound: float) -> None:
        if not self.fired and self.rule(self.best, bound):
            self.fired = True
            self.solver.stop_search()


def _run(model: cp_model.CpModel, x: list, opts: CpsatOptions, stop_at=None) -> _Run:
    """Solve with the options' limits; ``stop_at(objective, bound) -> bool`` stops early."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_time_in_seconds = float(opts.time_limit_s)
    if opts.deterministic_limit is not None:
        p.max_deterministic_time = float(opts.deterministic_limit)
    p.num_workers = int(opts.threads)
    p.random_seed = int(opts.seed)
    # Measured at (300, 8), 1 worker, 5 s: the LP with cuts (level 2) moved the bound on the
    # cloud load from 10 % to 3 % below the incumbent, and improved the incumbent as well.
    p.linearization_level = 2
    rule = None
    if stop_at is not None:
        rule = _StopRule(solver, stop_at)
        solver.best_bound_callback = rule.check
    status = solver.solve(model, rule)
    values = None
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        sol = np.asarray(solver.response_proto.solution, dtype=np.int64)
        values = sol[[v.index for v in x]].astype(bool) if x else np.zeros(0, dtype=bool)
    bound, wall = float(solver.best_objective_bound), float(solver.wall_time)
    fired = rule is not None and rule.fired
    # Which limit ended an unfinished search: the work limit when one was set and the wall
    # clock had not run out (CP-SAT checks both; the wall clock is the safety net).
    by_work = opts.deterministic_limit is not None and wall < 0.99 * opts.time_limit_s
    if values is None and not fired:
        # Ended by the time limit without a solution (UNKNOWN): best_objective_bound is then
        # no proof (it can read 0, which would pass for a proof that the empty assignment is
        # optimal). A bound that our callback saw and stopped on is a real one.
        bound = math.inf
    return _Run(status, values, bound, wall, fired, by_work)


def _hint(model: cp_model.CpModel, x: list, values: np.ndarray) -> None:
    model.clear_hints()
    for var, val in zip(x, values.tolist(), strict=True):
        model.add_hint(var, val)


def _migrations(sm: StepModel, chosen: np.ndarray) -> int:
    return sm.migration_const + int(sm.migration_coef[chosen].sum())


def _bound_bytes(pairs: Pairs, has_pair: np.ndarray, ub_units: int) -> float:
    """A lower bound on the cloud load from an upper bound on the served load (in units)."""
    loads = pairs.load_bits.tolist()
    total = math.fsum(loads)
    pair_bits = math.fsum(pairs.load_bits[has_pair].tolist())
    served_ub = min(ub_units * BITS_PER_LOAD_UNIT, pair_bits)
    cloud_bits = max(0.0, total - served_ub)
    # The simulator sums loads in float: allow its rounding error (<= n eps of the total).
    slack = 4 * (len(loads) + 1) * np.finfo(float).eps * total
    return max(0.0, cloud_bits - slack) / simulator.BITS_PER_BYTE


def solve_step(inst: Instance, opts: CpsatOptions | None = None) -> Decision:
    """The step's optimum by CP-SAT (module docstring), as a Decision: stage 1, then the
    relaxed model's bound unless stage 1 is trivially optimal, then stage 2."""
    opts = opts or CpsatOptions()
    pairs = admissible_pairs(inst)
    info: dict = {
        "solver": "cp-sat",
        "hz_per_unit": HZ_PER_UNIT,
        "bits_per_load_unit": BITS_PER_LOAD_UNIT,
        "pairs": pairs.n_pairs,
    }
    start = time.perf_counter()
    cons = build_step_model(inst, pairs, CONSERVATIVE)
    info["build_s"] = time.perf_counter() - start
    chosen, z1, stop = _stage1(cons, pairs, opts, info)
    has_pair = np.zeros(inst.n_users, dtype=bool)
    has_pair[pairs.user] = True
    served = np.zeros(inst.n_users, dtype=bool)
    served[pairs.user[chosen]] = True
    bound_bytes = None
    proven = bool(np.all(served == has_pair))
    if proven:
        info["bound_by"] = "every user with a pair is served"
    elif opts.prove_bound:
        ub_units, bound_stop = _relaxed_bound(inst, pairs, chosen, z1, opts, info)
        if ub_units is not None:
            bound_bytes = _bound_bytes(pairs, has_pair, ub_units)
            proven = z1 >= ub_units
        if not proven and bound_stop is not None and stop != "time_limit":
            stop = bound_stop  # a wall-clock stop anywhere makes the step unrepeatable
    info["migrations_stage1"] = _migrations(cons, chosen)
    if opts.second_stage:
        chosen = _fewest_migrations(inst, cons, pairs, chosen, z1, opts, info)
    info["migrations"] = _migrations(cons, chosen)
    info["slack_bits"] = float(
        cons.load_units[chosen].sum() * BITS_PER_LOAD_UNIT
        - pairs.load_bits[pairs.user[chosen]].sum()
    )
    action = action_from_assignment(inst, pairs, chosen)
    if bound_bytes is None and proven:
        # Serving every user that can be served is optimal exactly: the bound is its value.
        bound_bytes = simulator.apply(inst, action).cloud_load_bytes
    status = "optimal" if proven else (stop or "feasible")
    return Decision(action=action, status=status, bound_bytes=bound_bytes, info=info)


def _stage1(
    cons: StepModel, pairs: Pairs, opts: CpsatOptions, info: dict
) -> tuple[np.ndarray, int, str | None]:
    """Stage 1 on the conservative model: (assignment, its objective in units, the limit
    that stopped it or None)."""
    user_units = scale_loads(pairs.load_bits)
    has_pair = np.zeros(user_units.shape[0], dtype=bool)
    has_pair[pairs.user] = True
    total_units = int(user_units.sum())  # every user's load, in units
    servable_units = int(user_units[has_pair].sum())  # trivial bound: all users with a pair

    def done(obj: float, bound: float) -> bool:
        # Serving everyone who can be served needs no proof; ``gap`` is on the cloud load.
        if not math.isfinite(obj):
            return False
        return obj >= servable_units or bound - obj <= opts.gap * max(total_units - obj, 0.0)

    r1 = _run(cons.model, cons.x, opts, stop_at=done)
    chosen = r1.values if r1.values is not None else np.zeros(pairs.n_pairs, dtype=bool)
    z1 = int(cons.load_units[chosen].sum())
    info.update(stage1_status=r1.name, stage1_s=r1.wall_s, objective_units=z1)
    return chosen, z1, r1.stop


def _relaxed_bound(
    inst: Instance, pairs: Pairs, chosen: np.ndarray, z1: int, opts: CpsatOptions, info: dict
) -> tuple[int | None, str | None]:
    """An upper bound on the served load in units from the RELAXED model, hinted with stage
    1's assignment and stopped once it proves it (None when nothing valid was proven)."""
    relaxed = build_step_model(inst, pairs, RELAXED)
    _hint(relaxed.model, relaxed.x, chosen)
    rb = _run(relaxed.model, relaxed.x, opts, stop_at=lambda _o, b: b <= z1 + 0.5)
    # The bound is integral in units; round up whatever float noise it carries.
    ub_units = math.ceil(rb.bound - 1e-6) if math.isfinite(rb.bound) else None
    if ub_units is not None and ub_units < z1:
        # The relaxed model contains every conservative solution: a bound below stage 1's
        # objective cannot be a proof (seen only without a solution); drop it.
        ub_units = None
    info.update(bound_status=rb.name, bound_s=rb.wall_s, bound_units=ub_units)
    info["bound_by"] = "relaxed model"
    return ub_units, rb.stop


def _fewest_migrations(
    inst: Instance,
    cons: StepModel,
    pairs: Pairs,
    chosen: np.ndarray,
    z1: int,
    opts: CpsatOptions,
    info: dict,
) -> np.ndarray:
    """Stage 2: keep the served load (in units) and move as few SIs as possible; skipped
    when stage 1 already moves only the users that must move."""
    least = int((pairs.from_edge & ~_stay_pair(inst, pairs)).sum())
    if info["migrations_stage1"] <= least:
        return chosen
    cons.model.add(cons.served >= z1).with_name("stage1_load")
    cons.model.minimize(cons.migrations())
    _hint(cons.model, cons.x, chosen)
    r2 = _run(cons.model, cons.x, opts)
    info.update(stage2_status=r2.name, stage2_s=r2.wall_s)
    if r2.values is not None and _migrations(cons, r2.values) <= info["migrations_stage1"]:
        return r2.values
    return chosen


def _stay_pair(inst: Instance, pairs: Pairs) -> np.ndarray:
    """(U,) bool: the user may stay on its current ES (that pair exists)."""
    stay = np.zeros(inst.n_users, dtype=bool)
    stay[pairs.user[~pairs.migrates]] = True
    return stay


def cpsat_knapsack(
    weights_hz: np.ndarray,
    values: np.ndarray,
    capacity_hz: float,
    *,
    time_limit_s: float = 10.0,
    seed: int = 0,
    workers: int = 1,
) -> np.ndarray:
    """P3 by CP-SAT: a boolean mask maximising sum(values) with fsum(weights) <= capacity.

    Weights are rounded up to kHz and the capacity down (always feasible for the real
    numbers); ``values`` are loads in bits, rounded up to whole bits. If every item fits, all
    are taken (rule 4). Returns no item when CP-SAT finds no solution in time.
    """
    w = np.asarray(weights_hz, dtype=np.float64)
    if w.size and fits(w, float(capacity_hz)):
        return np.ones(w.shape, dtype=bool)
    km = build_knapsack_model(w, values, float(capacity_hz), CONSERVATIVE)
    opts = CpsatOptions(time_limit_s=time_limit_s, threads=workers, seed=seed)
    r = _run(km.model, km.x, opts)
    return r.values if r.values is not None else np.zeros(w.shape, dtype=bool)


@dataclass
class CpsatMethod:
    """The registry's ``cpsat`` method: the per-step optimum by CP-SAT."""

    options: CpsatOptions
    name: str = "cpsat"

    def decide(self, inst: Instance, step: int) -> Decision:
        return solve_step(inst, self.options)


def make_cpsat(name: str, settings: MethodSettings) -> CpsatMethod:
    """Factory for the registry: MethodSettings' time limit (per solve), threads, seed, gap."""
    limit = DEFAULT_TIME_LIMIT_S if settings.time_limit_s is None else settings.time_limit_s
    if settings.second_stage not in ("migrations", "none"):
        raise InputError(
            f"second stage {settings.second_stage!r}: cpsat breaks ties by migrations or none"
        )
    if settings.backend not in (None, "cp-sat"):
        raise InputError(f"backend {settings.backend!r}: cpsat has the one backend 'cp-sat'")
    opts = CpsatOptions(
        time_limit_s=float(limit),
        threads=int(settings.threads),
        seed=int(settings.seed),
        gap=float(settings.gap),
        second_stage=settings.second_stage == "migrations",
        deterministic_limit=settings.deterministic_limit,
    )
    return CpsatMethod(options=opts)
