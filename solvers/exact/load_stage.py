"""The engine's stage 1 (least cloud load): its plan, its status, and the ``load`` part of the
certificate (:mod:`.engine` runs the tie-break after it).

1. Where a plan serves every user with an admissible pair (the restricted problems' search,
   then a regret heuristic, then HiGHS on "everyone served" stopped at its first plan:
   :func:`.restricted_mip.serve_everyone`), that plan is optimal and the load certificate
   lam[u] = -load[u] proves it; HiGHS's load stage is not run.
2. Otherwise HiGHS's load stage (``milp``'s stage 1), with the stage's node limit, or
   ``overloaded_nodes`` where the search proves that not everyone can be served; with 0 it
   is not run there, and the knapsack plans at the LP duals (:mod:`.load_plans`) stand in
   for its plan.
3. Where that leaves the stage unproven, the load stage's own Lagrangian bound on whole hertz
   (``rounds`` rounds of the ascent from the LP duals towards the plan), above HiGHS's bound
   at (280, 8) and beyond; its multipliers certify it (``grid_hz`` 1). The plans at those
   multipliers (``plans`` orders of the ESs) replace the plan where they leave less in the
   cloud. Without HiGHS's plan the ascent first aims at a worse one, so it climbs twice more
   towards the better plans that follow. A plan that comes out serving everyone is proven by
   the forced-load certificate, one down to HiGHS's own bound by HiGHS's proof
   (``info["proof"]`` "certificate" or "highs").

4. With ``cloud_sets`` (off by default), what is still open goes to the cloud sets
   (:mod:`.cloud_sets`): every set of users lighter than the plan's cloud and heavier than
   the bound, refuted one by one, proves the plan; a set HiGHS serves is the optimum.

The bound seldom proves an overloaded stage: the Dantzig-Wolfe bound stays a fraction of one
user's load below the optimum (docs/design.md §9).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.limits import DEFAULT_CLOUD_SETS
from dtasm_opt.core.solution import Decision
from dtasm_opt.models.pairs import action_from_assignment
from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.cloud_sets import prove_by_cloud_sets
from dtasm_opt.solvers.exact.lagrangian import (
    _closed,
    ascend,
    load_dual,
    lp_multipliers,
    reaches,
)
from dtasm_opt.solvers.exact.load_plans import LOAD_PLAN_TRIES, best_plan
from dtasm_opt.solvers.exact.milp_driver import SolveOptions, solve_step
from dtasm_opt.solvers.exact.restricted_mip import serve_everyone

# Knapsack rounds of the overloaded load stage's ascent (whole-hertz branch and bound, about
# 2.5 ms a round at (280, 8)); it stops earlier when its step dies out.
LOAD_ROUNDS = 300
# Without HiGHS's load stage (--overloaded-nodes 0) the ascent first aims at the knapsack
# plans at the LP duals, a worse target than HiGHS's plan: two more climbs of 150 rounds,
# each towards the best plan so far and followed by the plans at its multipliers, brought
# the ten u280-h8-t20 states from 6 worse than the engine with HiGHS (by up to 168 KB) to 3
# (by 2-22 KB), 5 better, with bounds as high, in 2.4-9.3 s (docs/design.md §9).
OVERLOADED_CLIMBS = 2
CLIMB_ROUNDS = 150
# Nodes of the search for a plan serving everyone before HiGHS's load stage: where it finds
# one at all, it finds it without backtracking (200 nodes at U = 200), and at 1,000 a
# miss costs at most 0.4 ms (the regret heuristic then tries, about 0.35 ms).
EVERYONE_NODES = 1_000
# Where the search and the regret heuristic both miss, HiGHS's nodes on "everyone served"
# (stopped at its first plan): at (200, 8) 4 in 30 states, where HiGHS's load stage at 20
# nodes (the studies' limit) left a user in the cloud that every plan could serve, or proved
# nothing. Most are settled at its root; two took 2,525 nodes and between 1,000 and 5,000
# (12 ms a node: 20-25 s), where the engine at 20 nodes left 570 and 590 KB in the cloud
# (docs/design.md §9).
EVERYONE_MIP_NODES = 5_000


@dataclass(frozen=True)
class LoadBudget:
    """The stage's work limits: ascent rounds (0: no Lagrangian bound), orders of the ESs per
    call of the plans, and HiGHS's nodes where not everyone can be served (None: the stage's
    node limit; 0: HiGHS's load stage is not run there)."""

    rounds: int = LOAD_ROUNDS
    plans: int = LOAD_PLAN_TRIES
    overloaded_nodes: int | None = None
    cloud_sets: int = DEFAULT_CLOUD_SETS


def load_stage(
    inst: Instance,
    problem: StepProblem,
    backend,
    options: SolveOptions,
    budget: LoadBudget,
) -> tuple[Decision, dict | None]:
    """Stage 1's decision (``info`` as ``solve_step``'s stage 1, plus the bound's figures) and
    the certificate's ``load`` part, or None (the module's docstring). ``backend`` is built
    on ``problem`` (for the tie-break's HiGHS stages) unless there is no admissible pair."""
    first, how = _everyone_served(inst, problem, backend)
    start = None  # the LP duals, where the plans at them replaced HiGHS's load stage
    stage1 = replace(options, second_stage="none")
    if how == "overloaded" and budget.rounds > 0 and budget.overloaded_nodes is not None:
        if budget.overloaded_nodes == 0:
            first, start = _overloaded_start(inst, problem, backend, budget.plans)
        else:
            stage1 = replace(stage1, node_limit=budget.overloaded_nodes)
    if first is None:
        first = solve_step(inst, backend, stage1, problem)
    if not hasattr(backend, "problem"):  # no admissible pair: nothing to certify
        return first, None
    p = problem.pairs
    chosen = first.action[p.user] == p.server
    info = dict(first.info)
    status, bound_bytes = first.status, first.bound_bytes
    load = _load_certificate(problem, chosen)  # all that can be served is served
    bounded = load is None and status != "optimal" and budget.rounds > 0
    if bounded:
        # Overloaded and not proven by HiGHS: the Lagrangian bound on whole hertz, above
        # HiGHS's (docs/exact.md), with its certificate; without HiGHS's plan the ascent's first
        # target is a worse one, so it climbs again towards the plans it gives.
        climbs = OVERLOADED_CLIMBS if start is not None else 0
        chosen, load = _load_bound(problem, chosen, bound_bytes, info, budget, climbs, start)
        # Its repairs or plans may place every user HiGHS's plan left out.
        load = _load_certificate(problem, chosen) or load
        if load is not None:
            bound_bytes = load["bound_bytes"]
    if status != "optimal" and load is not None and load["proves_optimal"]:
        status, bound_bytes, info["proof"] = "optimal", load["bound_bytes"], "certificate"
    if bounded and status != "optimal" and bound_bytes is not None:
        # A repaired or planned plan down to HiGHS's own bound: HiGHS's proof. Its dual bound
        # as HiGHS gives it (info["bound"]), before the margin for its LP tolerances that the
        # reported bound takes off (1e-9 of the total load: 0.16 bytes at (200, 8), which
        # left a plan 4e-5 bytes below HiGHS's bound unproven), the tolerance on which HiGHS
        # calls its own incumbent optimal; as there, the plan's load becomes the bound.
        value = problem.cloud_load_bytes(chosen)
        highs = info.get("bound")
        if reaches(bound_bytes, value):
            status, info["proof"] = "optimal", "highs"
        elif highs is not None and reaches(highs, value):
            status, info["proof"], bound_bytes = "optimal", "highs", value
    if status != "optimal" and bound_bytes is not None and budget.cloud_sets > 0:
        chosen, status, bound_bytes, load = _cloud_sets(
            problem, chosen, status, bound_bytes, load, info, budget.cloud_sets
        )
    action = action_from_assignment(inst, p, chosen)
    return Decision(action, status, bound_bytes, info), load


def _load_bound(
    problem: StepProblem,
    chosen: np.ndarray,
    highs_bound: float | None,
    info: dict,
    budget: LoadBudget,
    climbs: int = 0,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, dict | None]:
    """The load stage's Lagrangian bound (whole-hertz knapsacks, ``budget.rounds`` rounds of
    the ascent from the LP duals, ``start`` where the caller has them, towards HiGHS's plan):
    the plan, better where a repair of the knapsacks' picks beat HiGHS's, and the
    certificate where its bound is above HiGHS's (else None). ``climbs`` more ascents
    (``CLIMB_ROUNDS`` rounds each) from the best multipliers towards the best plan so far,
    each followed by the plans at its multipliers."""
    t0 = time.perf_counter()
    dual = load_dual(problem)
    start = lp_multipliers(dual) if start is None else start
    result = ascend(dual, start, chosen, budget.rounds)
    if result.incumbent < dual.value(chosen):
        chosen = result.plan
        info["load_repaired"] = True
    # Plans from the multipliers: the ESs' knapsacks in turn (:mod:`.load_plans`); better
    # than HiGHS's after 2,000 nodes on most overloaded states (docs/design.md §9).
    plan = best_plan(problem, result.multipliers, budget.plans)
    if plan is not None and dual.value(plan) < dual.value(chosen):
        chosen = plan
        info["load_plan"] = "knapsacks"
    for _ in range(climbs):
        again = ascend(dual, result.multipliers, chosen, CLIMB_ROUNDS)
        if again.incumbent < dual.value(chosen):
            chosen = again.plan
        plan = best_plan(problem, again.multipliers, budget.plans)
        if plan is not None and dual.value(plan) < dual.value(chosen):
            chosen = plan
            info["load_plan"] = "knapsacks"
        spent = result.iterations + again.iterations
        if again.bound > result.bound:
            result = replace(again, iterations=spent)
        else:
            result = replace(result, iterations=spent)
    info.update(
        load_lagrangian_bound=result.bound,
        load_lagrangian_rounds=result.iterations,
        load_lagrangian_s=time.perf_counter() - t0,
    )
    if highs_bound is not None and not result.bound > highs_bound:
        return chosen, None
    value = problem.cloud_load_bytes(chosen)
    bound = min(result.bound, value)  # a bound reaching the plan proves it
    return chosen, {
        "multipliers": result.multipliers.tolist(),
        "bound_bytes": bound,
        "proves_optimal": _closed(dual, result.bound, value),
        "grid_hz": dual.grid_hz,
    }


def _cloud_sets(
    problem: StepProblem,
    chosen: np.ndarray,
    status: str,
    bound_bytes: float,
    load: dict | None,
    info: dict,
    sets: int,
) -> tuple[np.ndarray, str, float, dict | None]:
    """The cloud sets lighter than the plan's, refuted one by one (:mod:`.cloud_sets`):
    (plan, status, bound, load certificate). The certificate's bound rises as far as the
    sets its multipliers refute reach; HiGHS's refutations prove the plan without it."""
    certified = None if load is None else float(load["bound_bytes"])
    proof = prove_by_cloud_sets(problem, chosen, bound_bytes, certified, sets)
    if proof is None:
        return chosen, status, bound_bytes, load
    info.update(proof.info)
    chosen = proof.plan
    value = problem.cloud_load_bytes(chosen)
    bound_bytes = max(bound_bytes, proof.bound_bytes)
    if proof.proven:
        status, info["proof"], bound_bytes = "optimal", "cloud_sets", value
    if load is not None and proof.entries and proof.certified_bytes > load["bound_bytes"]:
        load = dict(
            load,
            bound_bytes=proof.certified_bytes,
            proves_optimal=reaches(proof.certified_bytes, value),
            cloud_sets=proof.entries,
        )
        if load["proves_optimal"]:
            info["proof"] = "certificate"
    return chosen, status, bound_bytes, load


def _everyone_served(inst: Instance, problem: StepProblem, backend) -> tuple[Decision | None, str]:
    """Stage 1 without HiGHS, or None: a plan placing every user with an admissible pair
    (:func:`.restricted_mip.serve_everyone`: the search, at most ``EVERYONE_NODES`` nodes,
    then the regret heuristic, then HiGHS within ``EVERYONE_MIP_NODES``; ``info["stage1"]``
    says which) leaves in the
    cloud only what no ES can take, so it is optimal, and its load certificate (decide)
    proves it. The backend is built all the same, for the tie-break's HiGHS stages. HiGHS's
    load stage takes 12-16 ms at (200, 8), the search 0.2-0.4 ms (docs/design.md §9). With
    the Decision, how the search ended (``serve_everyone``'s second value)."""
    t0 = time.perf_counter()
    p = problem.pairs
    if p.n_pairs == 0:
        return None, "none"
    x, how = serve_everyone(problem, EVERYONE_NODES, EVERYONE_MIP_NODES)
    if x is None:
        return None, how
    info = _stage1_info(problem, backend, x, t0, how, "optimal")  # how: "search", "regret" or "mip"
    load = info["objective"]
    info.update(bound=load, proof="certificate", gap=0.0)  # the load certificate, not HiGHS
    return Decision(action_from_assignment(inst, p, x), "optimal", load, info), how


def _overloaded_start(
    inst: Instance, problem: StepProblem, backend, tries: int
) -> tuple[Decision, np.ndarray]:
    """Stage 1's start where not everyone can be served, without HiGHS: the best of ``tries``
    knapsack plans (:mod:`.load_plans`) at the LP duals, unproven ("work_limit"), and those
    duals, where the load stage's bound and plans (``_load_bound``) go on. The backend is
    built for the tie-break's HiGHS stages."""
    t0 = time.perf_counter()
    duals = lp_multipliers(load_dual(problem))
    plan = best_plan(problem, duals, max(tries, 1))
    assert plan is not None  # there are pairs (the search said "overloaded")
    # "work_limit": the engine's own rounds and tries stop it, not HiGHS
    info = _stage1_info(problem, backend, plan, t0, "lagrangian", "work_limit")
    action = action_from_assignment(inst, problem.pairs, plan)
    return Decision(action, "work_limit", None, info), duals


def _stage1_info(
    problem: StepProblem, backend, plan: np.ndarray, t0: float, stage1: str, termination: str
) -> dict:
    """What solve_step's stage 1 reports, for a plan found without HiGHS since ``t0``; builds
    the backend (for the tie-break's HiGHS stages) and times that apart."""
    solve_s = time.perf_counter() - t0
    backend.build(problem)
    load = problem.cloud_load_bytes(plan)
    return {
        "backend": backend.name,
        "n_pairs": problem.n_pairs,
        "build_s": time.perf_counter() - t0 - solve_s,
        "objective": load,
        "termination": termination,
        "nodes": 0,
        "solve_s": solve_s,
        "stage1": stage1,
        "stage2_status": "none",  # as solve_step's stage 1 alone; the tie-break reports its own
        "cloud_load_bytes": load,
        "total_s": time.perf_counter() - t0,
    }


def _load_certificate(problem: StepProblem, chosen: np.ndarray) -> dict | None:
    """lam = -load proves a plan that serves every user with a pair (L = the forced load)."""
    dual = load_dual(problem)
    if not np.array_equal(problem.served(chosen), dual.rows):
        return None
    lam = np.where(dual.rows, -problem.load_bytes, 0.0)
    bound, _ = dual.evaluate(lam)
    return {"multipliers": lam.tolist(), "bound_bytes": bound, "proves_optimal": True}
