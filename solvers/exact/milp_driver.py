"""The lexicographic driver of the per-step MILP, whatever feeds HiGHS (direct matrices or
Pyomo): options, the two stages and the translation of a run into a
:class:`~dtasm_opt.core.solution.Decision`.

A backend only builds the model of :mod:`dtasm_opt.models.step_problem`, runs HiGHS and adds
stage 2; :func:`solve_step` decides what the run proved. The status follows docs/design.md §3:
"optimal" only with a relative gap of 0, "feasible" when a requested nonzero gap stopped the
search, "work_limit" for an incumbent at the node limit (a work limit: with one thread the
same run stops at the same node, so the answer repeats bit for bit), "time_limit" for an
incumbent at the wall-clock limit (which may differ between runs). The reported cloud load is
always the simulator's; the assignment is checked with the simulator's exact capacity test
first.

Why stage 2 fixes the served set rather than adding the row "cloud load <= z1 + slack": with
that row HiGHS 1.16 returned a wrong "optimal" stage 2 (2 migrations where 1 was possible,
found by the brute-force tests; correct with presolve off; the same with a slack of 1e-12,
1e-9 or 1e-6 of the total load, or a row scaled to unit coefficients). Fixing the served set
uses only 0/1 rows and is exact whenever the load-optimal served set is unique, which holds
with probability 1 for loads drawn from continuous distributions (two different sets of users
have the same summed load only by coincidence); with exactly tied sets (identical users) it
breaks the tie among stage 1's set only (docs/design.md §9).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.limits import MAX_NODE_LIMIT
from dtasm_opt.core.method import SECOND_STAGES
from dtasm_opt.core.solution import Decision, relative_gap
from dtasm_opt.errors import InputError
from dtasm_opt.models.pairs import action_from_assignment
from dtasm_opt.models.step_problem import CAPACITY_MARGIN, TIE_REL, StepProblem, step_problem

# The dual bound is lowered by this fraction of the total load before it is reported, to cover
# the LP tolerances of HiGHS (1e-7 on scaled rows and costs) with room to spare.
BOUND_SAFETY_REL = 1e-9
HIGHS_MAX_INT = MAX_NODE_LIMIT  # HiGHS's default (and largest) mip_max_nodes


@dataclass(frozen=True)
class SolveOptions:
    """How to run HiGHS on one step."""

    time_limit_s: float | None = None  # stage 1 wall-clock limit (None: no limit)
    gap: float = 0.0  # mip_rel_gap; 0 means "optimal" is proven
    threads: int = 1  # HiGHS threads
    seed: int = 0  # HiGHS random_seed
    second_stage: str = "migrations"  # "migrations", "downtime" or "none"
    second_stage_time_limit_s: float | None = None  # None: the same as time_limit_s
    margin: float = CAPACITY_MARGIN  # C4's relative safety margin
    warm_start: bool = True  # give HiGHS a greedy assignment as its first incumbent
    node_limit: int | None = None  # mip_max_nodes of each stage (None: no limit)

    def __post_init__(self) -> None:
        for name in ("time_limit_s", "second_stage_time_limit_s"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise InputError(f"{name}: {v} is invalid, must be > 0 (or None)")
        if not (math.isfinite(self.gap) and 0.0 <= self.gap < 1.0):
            raise InputError(f"gap: {self.gap} is invalid, must be in [0, 1)")
        if self.node_limit is not None and (
            int(self.node_limit) != self.node_limit or self.node_limit < 1
        ):
            raise InputError(f"node_limit: {self.node_limit} is invalid, must be an integer >= 1")
        if self.node_limit is not None and self.node_limit > MAX_NODE_LIMIT:
            raise InputError(
                f"node_limit: {self.node_limit} is too large (at most {MAX_NODE_LIMIT:,})"
            )
        if int(self.threads) < 1:
            raise InputError(f"threads: {self.threads} is invalid, must be >= 1")
        if self.second_stage not in SECOND_STAGES:
            raise InputError(
                f"second_stage: {self.second_stage!r} is unknown, use one of {SECOND_STAGES}"
            )

    @property
    def stage2_limit_s(self) -> float | None:
        if self.second_stage_time_limit_s is not None:
            return self.second_stage_time_limit_s
        return self.time_limit_s

    def highs_options(self, time_limit_s: float | None) -> dict:
        # Always set both limits (inf / HiGHS's maximum for none): a persistent solver keeps
        # options between stage 1 and stage 2.
        return {
            "mip_rel_gap": float(self.gap),
            "threads": int(self.threads),
            "random_seed": int(self.seed),
            "time_limit": math.inf if time_limit_s is None else float(time_limit_s),
            "mip_max_nodes": HIGHS_MAX_INT if self.node_limit is None else int(self.node_limit),
        }


@dataclass
class StageRun:
    """What one HiGHS run gave, whatever the backend."""

    termination: str  # "optimal", "time_limit", "work_limit", "interrupted", "infeasible",
    # "error"
    values: np.ndarray | None  # (K,) column values of the incumbent, None without one
    objective: float | None  # the model's objective at the incumbent
    dual_bound: float | None  # HiGHS's mip_dual_bound
    mip_gap: float | None
    nodes: int
    time_s: float


class Backend(Protocol):
    """One HiGHS model of a :class:`StepProblem`: build, solve, then optionally stage 2."""

    name: str

    def build(self, problem: StepProblem) -> None: ...

    def solve(self, highs_options: dict, start: np.ndarray | None) -> StageRun: ...

    def add_second_stage(self, kind: str, served: np.ndarray) -> None: ...


def greedy_assignment(problem: StepProblem) -> np.ndarray:
    """A feasible assignment (K,) bool: WoMig-stable restricted to admissible pairs, then the
    remaining users greedily by load per Hz. Used as HiGHS's first incumbent and as the answer
    when HiGHS has none."""
    p = problem.pairs
    ratio = problem.pair_load_bytes / np.maximum(p.required_hz, 1e-300)
    order = np.lexsort((-ratio, p.migrates))  # staying pairs first, then best load per Hz
    used = np.zeros(problem.n_servers)
    cap = problem.model_capacity_hz
    placed = np.zeros(problem.n_users, dtype=bool)
    chosen = np.zeros(p.n_pairs, dtype=bool)
    for k in order:
        u, h = p.user[k], p.server[k]
        if not placed[u] and used[h] + p.required_hz[k] <= cap[h]:
            used[h] += p.required_hz[k]
            placed[u] = chosen[k] = True
    return chosen


def _chosen(problem: StepProblem, run: StageRun) -> tuple[np.ndarray | None, int]:
    """Round the incumbent; repair what the exact tests of C1 and C4 find broken (a second ES
    of a user; the lightest users of an overfull ES). Returns (chosen, pairs dropped)."""
    if run.values is None:
        return None, 0
    chosen = np.asarray(run.values) > 0.5
    # C1: keep the first pair of a user the incumbent puts on two ESs (never seen from HiGHS).
    on = np.flatnonzero(chosen)
    users = problem.pairs.user[on]  # pairs are sorted by user
    repeat = np.zeros(on.size, dtype=bool)
    repeat[1:] = users[1:] == users[:-1]
    chosen[on[repeat]] = False
    dropped = int(repeat.sum())
    for h in np.flatnonzero(~problem.fits(chosen)):
        on_h = np.flatnonzero(chosen & (problem.pairs.server == h))
        for k in on_h[np.argsort(problem.pair_load_bytes[on_h], kind="stable")]:
            chosen[k] = False
            dropped += 1
            if problem.fits(chosen)[h]:
                break
    return chosen, dropped


def solve_step(
    inst: Instance, backend: Backend, options: SolveOptions, problem: StepProblem | None = None
) -> Decision:
    """Solve one step with ``backend``: stage 1 (cloud load), then stage 2 if asked.
    ``problem``: the step's problem where the caller has built it (with ``options.margin``)."""
    t0 = time.perf_counter()
    if problem is None:
        problem = step_problem(inst, options.margin)
    info: dict = {"backend": backend.name, "n_pairs": problem.n_pairs}
    if problem.n_pairs == 0:  # nobody can be placed: all in the cloud, trivially optimal
        load = problem.cloud_load_bytes(np.zeros(0, dtype=bool))
        info.update(objective=load, bound=load, gap=0.0, cloud_load_bytes=load)
        info["stage2_status"] = "skipped"
        action = np.full(inst.n_users, inst.cloud, dtype=np.int64)
        return Decision(action=action, status="optimal", bound_bytes=load, info=info)
    backend.build(problem)
    info["build_s"] = time.perf_counter() - t0
    start = greedy_assignment(problem) if options.warm_start else None
    run1 = _run(backend, options.highs_options(options.time_limit_s), start, problem, None, info)
    chosen, dropped = _chosen(problem, run1)
    info.update(
        objective=run1.objective,
        bound=finite_or_none(run1.dual_bound),
        termination=run1.termination,
        nodes=run1.nodes,
        solve_s=run1.time_s,
    )
    if run1.termination in ("infeasible", "error"):
        raise RuntimeError(
            f"HiGHS ({backend.name}) ended with {run1.termination} on a model "
            "that is always feasible (x = 0)"
        )
    if chosen is None:
        chosen = start if start is not None else greedy_assignment(problem)
        info["fallback"] = "greedy: HiGHS had no incumbent at the time limit"
    if dropped:
        info["repaired_users"] = dropped
    stage1_load = problem.cloud_load_bytes(chosen)
    consistent = (
        run1.objective is not None
        and not dropped
        and "fallback" not in info
        and problem.same_load(stage1_load, run1.objective)
    )
    proven = (
        run1.termination == "optimal"
        and consistent
        and (options.gap == 0.0 or (run1.mip_gap is not None and run1.mip_gap <= TIE_REL))
    )

    chosen, stage2 = second_stage(problem, backend, options, chosen)
    info.update(stage2)
    final_load = problem.cloud_load_bytes(chosen)
    info["cloud_load_bytes"] = final_load
    if proven:
        status, bound = "optimal", stage1_load
    else:
        status = {"optimal": "feasible", "work_limit": "work_limit"}.get(
            run1.termination, "time_limit"
        )
        bound = _safe_bound(problem, run1.dual_bound, final_load)
    info["gap"] = relative_gap(final_load, bound)
    info["total_s"] = time.perf_counter() - t0
    action = action_from_assignment(inst, problem.pairs, chosen)
    return Decision(action=action, status=status, bound_bytes=bound, info=info)


def finite_or_none(value: float | None) -> float | None:
    """A number for ``Decision.info`` (it goes to JSON): None where HiGHS reports +-inf or NaN."""
    return float(value) if value is not None and math.isfinite(value) else None


def _safe_bound(problem: StepProblem, dual_bound: float | None, incumbent: float) -> float:
    """HiGHS's dual bound lowered by BOUND_SAFETY_REL of the total load, never above the
    incumbent nor below the load of users that no ES can take."""
    forced = problem.forced_cloud_bytes
    if dual_bound is None or not math.isfinite(dual_bound):
        return min(forced, incumbent)
    safe = dual_bound - BOUND_SAFETY_REL * problem.total_load_bytes
    return min(max(safe, forced), incumbent)


def second_stage(
    problem: StepProblem,
    backend: Backend,
    options: SolveOptions,
    chosen: np.ndarray,
) -> tuple[np.ndarray, dict]:
    """Stage 2: fewest migrations or least downtime with stage 1's served users (hence its
    exact cloud load; see dtasm_opt.models.step_milp for why the served set is fixed)."""
    kind = options.second_stage
    if kind == "none":
        return chosen, {"stage2_status": "none"}
    value = problem.second_stage_value(kind, chosen)
    if value <= _second_stage_floor(problem, kind):
        # Already at a lower bound of stage 2: nothing to gain from another solve.
        return chosen, {
            "stage2_status": "optimal",
            "stage2_objective": value,
            "stage2_bound": value,
            "stage2_s": 0.0,
        }
    served = problem.served(chosen)
    backend.add_second_stage(kind, served)
    out: dict = {}
    run2 = _run(backend, options.highs_options(options.stage2_limit_s), chosen, problem, kind, out)
    out |= {"stage2_status": run2.termination, "stage2_s": run2.time_s, "stage2_nodes": run2.nodes}
    if finite_or_none(run2.dual_bound) is not None:
        out["stage2_bound"] = run2.dual_bound
    new, dropped = _chosen(problem, run2)
    if (
        new is None
        or dropped
        or not np.array_equal(problem.served(new), served)
        or problem.second_stage_value(kind, new) > value
    ):
        # Stage 2 gave nothing usable or nothing better: keep stage 1's assignment.
        out.update(stage2_objective=value, stage2_kept_stage1=True)
        return chosen, out
    out["stage2_objective"] = problem.second_stage_value(kind, new)
    return new, out


def _run(
    backend: Backend,
    highs_options: dict,
    start: np.ndarray | None,
    problem: StepProblem,
    kind: str | None,
    info: dict,
) -> StageRun:
    """One HiGHS run; again without the start if the incumbent's own objective disagrees with
    the one HiGHS reports. HiGHS 1.16 does that when presolve solves the model and a start was
    given: it returns the start's values with the optimum's objective (seen on a 6-user case)."""
    run = backend.solve(highs_options, start)
    if start is None or run.values is None or run.objective is None:
        return run
    chosen = np.asarray(run.values) > 0.5
    if kind is None:
        ok = problem.same_load(problem.cloud_load_bytes(chosen), run.objective)
    else:
        value = problem.second_stage_value(kind, chosen)
        ok = abs(value - run.objective) <= 1e-9 * max(abs(value), abs(run.objective), 1.0)
    if ok:
        return run
    info["stage2_rerun" if kind else "rerun"] = "HiGHS returned the start, not its optimum"
    return backend.solve(highs_options, None)


def _second_stage_floor(problem: StepProblem, kind: str) -> float:
    """A lower bound on stage 2: every user pays at least its cheapest option (its own ES
    when that pair exists, else the cheaper of the cloud and its cheapest pair)."""
    pair_cost, cloud_cost = problem.second_stage_costs(kind)
    cheapest = cloud_cost.copy()
    np.minimum.at(cheapest, problem.pairs.user, pair_cost)
    return float(cheapest.sum())
