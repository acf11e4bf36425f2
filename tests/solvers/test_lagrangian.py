"""The Lagrangian engine (``lagrangian``): grid knapsack, bounds, certificates, method.

References are independent of the engine: brute force over subsets (knapsack) and over all
(H+1)^U actions through the simulator (the step's optimum), and ``verify``'s own recomputation
of every certificate (:mod:`dtasm_opt.core.certificate`).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bruteforce import SEEDS, SIZES, brute_force, close, tiny_instance
from families import moderate_instance
from hypothesis import given, settings
from hypothesis import strategies as st

from dtasm_opt.core import simulator
from dtasm_opt.core.certificate import CERTIFICATE_FORMAT
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.core.verify import verify
from dtasm_opt.experiments.states import rollout_state
from dtasm_opt.models.step_problem import step_problem
from dtasm_opt.solvers import registry
from dtasm_opt.solvers.exact.engine import ENGINE_BACKEND, ENGINE_NODE_LIMIT
from dtasm_opt.solvers.exact.grid_knapsack import best_subset, capacity_units, floor_units
from dtasm_opt.solvers.exact.highs_direct import solve_direct
from dtasm_opt.solvers.exact.lagrangian import (
    COARSE_GRID_HZ,
    COARSE_ROUNDS,
    FINE_REACH,
    ascend,
    ascend_coarse_first,
    load_dual,
    lp_multipliers,
    migrations_dual,
)
from dtasm_opt.solvers.exact.milp_driver import SolveOptions

ENGINE = "lagrangian"
CONTRACT = Path(__file__).resolve().parents[1] / "data" / "contract"


def engine(**settings: object):
    return registry.make_method(ENGINE, MethodSettings(**settings))  # type: ignore[arg-type]


def as_json(solution) -> dict:
    return json.loads(json.dumps(solution.to_dict()))


# --- the grid knapsack -------------------------------------------------------------------


@settings(max_examples=200)
@given(seed=SEEDS, n=st.integers(1, 9))
def test_best_subset_equals_brute_force_on_integers(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    units = rng.integers(0, 30, size=n)
    values = rng.normal(1.0, 1.0, size=n)
    cap = int(rng.integers(0, 60))
    value, chosen, table = best_subset(units, values, cap)
    best = 0.0
    for mask in itertools.product((False, True), repeat=n):
        m = np.array(mask)
        if units[m].sum() <= cap:
            best = max(best, values[m].sum())
    assert math.isclose(value, best, rel_tol=1e-12, abs_tol=1e-12)
    assert units[chosen].sum() <= cap and math.isclose(values[chosen].sum(), value, abs_tol=1e-12)
    assert np.all(values[chosen] > 0)
    assert table.shape == (cap + 1,) and np.all(np.diff(table) >= 0)


@settings(max_examples=200)
@given(seed=SEEDS, n=st.integers(1, 9))
def test_grid_knapsack_bounds_the_real_one(seed: int, n: int) -> None:
    """Weights floored, capacity rounded up: never below the best subset that truly fits."""
    rng = np.random.default_rng(seed)
    grid = 1e6
    weights = rng.uniform(1e8, 5e9, size=n)
    values = rng.uniform(0.1, 2.0, size=n)
    cap_hz = float(rng.uniform(1e9, 1.5e10))
    value, _, _ = best_subset(floor_units(weights, grid), values, capacity_units(cap_hz, grid))
    best = 0.0
    for mask in itertools.product((False, True), repeat=n):
        m = np.array(mask)
        if math.fsum(weights[m].tolist()) <= cap_hz:
            best = max(best, values[m].sum())
    assert value >= best - 1e-12


def test_floor_units_is_exact_at_the_edges() -> None:
    grid = 1e6
    exact = np.array([3e9, 7e6, 0.0])
    below = np.nextafter(exact, -np.inf)
    assert floor_units(exact, grid).tolist() == [3000, 7, 0]
    assert floor_units(below[:2], grid).tolist() == [2999, 6]
    # fsum of a fitting set may exceed the capacity by half an ulp: the next float up counts.
    assert capacity_units(3e9, grid) == 3000
    assert capacity_units(np.nextafter(3e9, 0.0), grid) == 3000


# --- the bound ---------------------------------------------------------------------------


@settings(max_examples=60)
@given(seed=SEEDS, size=SIZES, overloaded=st.booleans(), shift=st.floats(-2.0, 2.0))
def test_any_multipliers_bound_the_optimum(
    seed: int, size: tuple[int, int], overloaded: bool, shift: float
) -> None:
    """L(lam) never exceeds the brute-force optimum, for the LP duals, the ascent's end and
    arbitrary multipliers, in both stages."""
    inst = tiny_instance(seed, *size, overloaded)
    ref = brute_force(inst)
    problem = step_problem(inst)
    if problem.n_pairs == 0:
        return
    rng = np.random.default_rng(seed)
    dual = load_dual(problem)
    for lam in (lp_multipliers(dual), -rng.uniform(0, 2e6, inst.n_users)):
        assert dual.evaluate(lam)[0] <= ref.load * (1 + 1e-9) + 1e-6
    best = solve_direct(inst, SolveOptions())
    chosen = best.action[problem.pairs.user] == problem.pairs.server
    mig = migrations_dual(problem, problem.served(chosen))
    result = ascend(mig, lp_multipliers(mig), chosen, 50)
    for lam in (result.multipliers, rng.normal(shift, 1.0, inst.n_users)):
        assert mig.evaluate(lam)[0] <= ref.migrations + 1e-9
    assert result.incumbent >= ref.migrations


def plans_serving(problem, served: np.ndarray):
    """Every plan (mask over pairs) that puts each served user on one of its ESs and fits."""
    p = problem.pairs
    options = [np.flatnonzero(p.user == u) for u in np.flatnonzero(served)]
    for picks in itertools.product(*options):
        chosen = np.zeros(p.n_pairs, dtype=bool)
        chosen[list(picks)] = True
        if problem.fits(chosen).all():
            yield chosen


@settings(max_examples=60)
@given(seed=SEEDS, size=SIZES, overloaded=st.booleans(), shift=st.floats(-1.0, 2.0))
def test_forced_pair_bounds_hold(
    seed: int, size: tuple[int, int], overloaded: bool, shift: float
) -> None:
    """Reduced-cost fixing's premise: L + penalty[k] never exceeds the fewest migrations of a
    plan that uses pair k (brute force over the plans serving the same users)."""
    inst = tiny_instance(seed, *size, overloaded)
    problem = step_problem(inst)
    if problem.n_pairs == 0:
        return
    best = solve_direct(inst, SolveOptions())
    chosen = best.action[problem.pairs.user] == problem.pairs.server
    served = problem.served(chosen)
    dual = migrations_dual(problem, served)
    rng = np.random.default_rng(seed)
    lam = np.where(served, rng.normal(shift, 1.0, inst.n_users), 0.0)
    bound, penalty = dual.penalties(lam)
    assert bound == dual.evaluate(lam)[0]
    fewest = np.full(problem.n_pairs, np.inf)
    for plan in plans_serving(problem, served):
        fewest[plan] = np.minimum(fewest[plan], dual.value(plan))
    forced = bound + penalty
    on = np.isfinite(fewest[dual.pair_ids])
    assert np.all(forced[on] <= fewest[dual.pair_ids][on] + 1e-9)


@settings(max_examples=60)
@given(seed=SEEDS, size=SIZES, overloaded=st.booleans(), shift=st.floats(-1.0, 2.0))
def test_a_coarser_grid_bounds_no_higher(
    seed: int, size: tuple[int, int], overloaded: bool, shift: float
) -> None:
    """What the two-grid ascent relies on: at the same multipliers the coarse grid's bound
    never exceeds the fine grid's (every subset that fits the fine grid fits the coarse one),
    so a proof on the coarse grid is a proof on the fine one."""
    inst = tiny_instance(seed, *size, overloaded)
    problem = step_problem(inst)
    if problem.n_pairs == 0:
        return
    rng = np.random.default_rng(seed)
    best = solve_direct(inst, SolveOptions())
    chosen = best.action[problem.pairs.user] == problem.pairs.server
    stages = (
        (load_dual(problem), -rng.uniform(0, 2e6, inst.n_users)),
        (migrations_dual(problem, problem.served(chosen)), rng.normal(shift, 1.0, inst.n_users)),
    )
    for fine, lam in stages:
        coarse = replace(fine, grid_hz=COARSE_GRID_HZ)
        for multipliers in (lam, lp_multipliers(fine)):
            assert coarse.evaluate(multipliers)[0] <= fine.evaluate(multipliers)[0] + 1e-9


# bench_tiebreak's (100, 4) and (120, 4) states whose fine ascent needs 11-74 rounds to prove
# HiGHS's root incumbent (README, the Lagrangian engine)
HARD_PROOFS = [(100, 2, 3), (100, 5, 0), (100, 8, 0), (120, 3, 3)]


@pytest.mark.parametrize(("users", "seed", "step"), HARD_PROOFS)
def test_the_coarse_phase_proves_what_the_fine_ascent_proves(
    users: int, seed: int, step: int
) -> None:
    """The two-grid ascent proves what 200 rounds on the 1 MHz grid prove, and the bound it
    returns is the fine grid's own at its multipliers (what the certificate check recomputes)."""
    inst = rollout_state(Scenario(users=users, servers=4), seed, step)
    d = solve_direct(inst, SolveOptions(node_limit=1))
    problem = step_problem(inst)
    chosen = d.action[problem.pairs.user] == problem.pairs.server
    dual = migrations_dual(problem, problem.served(chosen))
    fine = ascend(dual, lp_multipliers(dual), chosen, 200)
    both = ascend_coarse_first(dual, lp_multipliers(dual), chosen, 200)
    assert fine.proven and fine.iterations > 1  # not a trivial state
    assert both.proven and both.incumbent == fine.incumbent
    assert both.bound == dual.evaluate(both.multipliers)[0]
    assert both.iterations <= COARSE_ROUNDS + 1 + 200


def test_a_bound_far_below_the_incumbent_skips_the_fine_phase() -> None:
    """Stage 1's plan before any tie-break: 47 migrations where the bound says 24 or more, far
    beyond what fine rounds have ever closed, so the ascent stops after the coarse phase and
    reports the fine grid's bound at its multipliers (still a valid bound)."""
    inst = generate_stream(Scenario(users=120, servers=4), seed=2).instance(0)
    d = solve_direct(inst, SolveOptions(node_limit=1, second_stage="none"))
    problem = step_problem(inst)
    chosen = d.action[problem.pairs.user] == problem.pairs.server
    dual = migrations_dual(problem, problem.served(chosen))
    result = ascend_coarse_first(dual, lp_multipliers(dual), chosen, 200)
    assert not result.proven
    assert result.incumbent - math.ceil(result.bound) > FINE_REACH
    assert result.iterations <= COARSE_ROUNDS + 1
    assert result.bound == dual.evaluate(result.multipliers)[0]


def test_the_coarse_phase_ends_at_its_first_stall() -> None:
    inst = generate_stream(Scenario(users=60, servers=4), seed=2).instance(0)
    problem = step_problem(inst)
    d = solve_direct(inst, SolveOptions(second_stage="none"))
    chosen = d.action[problem.pairs.user] == problem.pairs.server
    # the load stage of this state is not proven by its bound: the ascent stalls
    dual = load_dual(problem)
    whole = ascend(dual, lp_multipliers(dual), chosen, 200)
    first = ascend(dual, lp_multipliers(dual), chosen, 200, max_halvings=0)
    assert not whole.proven
    assert first.iterations < whole.iterations
    assert first.iterations >= 15  # PATIENCE rounds without a better bound at the least


def test_ascent_is_deterministic() -> None:
    inst = generate_stream(Scenario(users=40, servers=3), seed=3).instance(0)
    problem = step_problem(inst)
    d = solve_direct(inst, SolveOptions(second_stage="none"))
    chosen = d.action[problem.pairs.user] == problem.pairs.server
    dual = migrations_dual(problem, problem.served(chosen))
    a = ascend(dual, lp_multipliers(dual), chosen, 40)
    b = ascend(dual, lp_multipliers(dual), chosen, 40)
    assert a.bound == b.bound and np.array_equal(a.multipliers, b.multipliers)
    assert a.iterations == b.iterations and np.array_equal(a.plan, b.plan)


# --- the method and its certificates -----------------------------------------------------


@settings(max_examples=120)
@given(seed=SEEDS, size=SIZES, overloaded=st.booleans())
def test_engine_equals_brute_force_and_its_certificates_verify(
    seed: int, size: tuple[int, int], overloaded: bool
) -> None:
    inst = tiny_instance(seed, *size, overloaded)
    ref = brute_force(inst)
    sol = judge(engine(), inst)
    out = simulator.apply(inst, sol.action)
    assert sol.status == "optimal"
    assert close(out.cloud_load_bytes, ref.load)
    assert out.migrated == ref.migrations
    assert verify(inst, as_json(sol)) == []
    cert = sol.info.get("certificate")
    if cert is not None:
        assert cert["format"] == CERTIFICATE_FORMAT
        if "migrations" in cert:
            assert math.ceil(cert["migrations"]["bound"] - 1e-6) >= ref.migrations


@pytest.mark.parametrize("path", sorted(CONTRACT.glob("case-*.json")), ids=lambda p: p.stem)
def test_engine_reaches_the_contract_optimum(path: Path) -> None:
    """The shared contract's optima, computed independently of this project."""
    doc = json.loads(path.read_text())
    inst = Instance.from_dict(doc["instance"])
    sol = judge(engine(), inst)
    assert sol.status == "optimal"
    assert close(sol.cloud_load_bytes, doc["optimal_cloud_load_bytes"])
    assert verify(inst, as_json(sol)) == []


@pytest.mark.parametrize("seed", range(24))
def test_engine_equals_highs_where_highs_proves(seed: int) -> None:
    """Moderate instances (U 30-60, H 3-5, half of them overloaded): wherever plain HiGHS
    proves both stages, the engine has the same cloud load and the same migrations."""
    inst = moderate_instance(seed)
    ref = solve_direct(inst, SolveOptions(time_limit_s=60.0))
    if not (ref.status == "optimal" and ref.info["stage2_status"] == "optimal"):
        pytest.skip("HiGHS proves no reference here")
    sol = judge(engine(time_limit_s=60.0), inst)
    out = simulator.apply(inst, ref.action)
    assert sol.status == "optimal" and sol.info["stage2_status"] == "optimal"
    assert close(sol.cloud_load_bytes, out.cloud_load_bytes)
    assert sol.metrics["migrated"] == out.migrated
    assert verify(inst, as_json(sol)) == []


def test_certificates_are_issued_where_they_hold() -> None:
    """Not only trivial cases: tiny families where the stage-2 bound must be proved."""
    proved_load = proved_migrations = 0
    for seed in range(40):
        inst = tiny_instance(seed, 5, 3, overloaded=seed % 2 == 1)
        sol = judge(engine(), inst)
        cert = sol.info.get("certificate", {})
        proved_load += "load" in cert
        proved_migrations += "migrations" in cert
        assert verify(inst, as_json(sol)) == []
    assert proved_load >= 10 and proved_migrations >= 30, (proved_load, proved_migrations)


@pytest.fixture(scope="module")
def certified() -> tuple:
    """A (60, 4) state after a few MILP-greedy steps, with both certificates."""
    stream = generate_stream(Scenario(users=60, servers=4), seed=11, steps=3)
    server = None
    method = engine()
    for t in range(3):
        inst = stream.instance(t, server)
        sol = judge(method, inst, t)
        server = sol.final_server
    return inst, sol


def test_a_later_state_is_certified(certified) -> None:
    inst, sol = certified
    cert = sol.info["certificate"]
    assert {"load", "migrations"} <= set(cert)
    assert sol.info["stage2_status"] == "optimal"
    assert verify(inst, as_json(sol)) == []


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda c: c["migrations"].update(bound=c["migrations"]["bound"] + 1), "give only"),
        (lambda c: c["load"].update(bound_bytes=c["load"]["bound_bytes"] + 1e3), "give only"),
        (
            lambda c: c["migrations"]["multipliers"].__setitem__(slice(None), [0.0] * 60),
            "give only",
        ),
        (lambda c: c["migrations"].update(multipliers=[1.0]), "60 finite numbers"),
        (lambda c: c.update(grid_hz=-1), "positive number"),
        (lambda c: c.update(grid_hz=1.0), "too fine"),
        (lambda c: c.update(format="x"), "dtasm-certificate/1"),
        (lambda c: c["migrations"].update(bound="many"), "not a finite number"),
    ],
)
def test_a_tampered_certificate_is_caught(certified, tamper, message: str) -> None:
    inst, sol = certified
    doc = copy.deepcopy(as_json(sol))
    tamper(doc["info"]["certificate"])
    problems = verify(inst, doc)
    assert any(message in p for p in problems), problems


def test_a_false_optimality_claim_is_caught(certified) -> None:
    """A certificate whose (correct) bound is below the solution's value may not claim it."""
    inst, sol = certified
    doc = copy.deepcopy(as_json(sol))
    mig = doc["info"]["certificate"]["migrations"]
    mig["multipliers"] = [0.0] * inst.n_users
    mig["bound"] = -1e9  # valid, but proves nothing
    problems = verify(inst, doc)
    assert any("claims to prove" in p for p in problems), problems


def test_defaults_are_a_work_limit_on_the_scaled_matrix() -> None:
    """Unless told otherwise the engine stops HiGHS by nodes (it repeats itself) on the scaled
    matrix; a user's own choice wins."""
    inst = generate_stream(Scenario(users=40, servers=3), seed=4).instance(0)
    sol = judge(engine(), inst)
    assert sol.info["backend"] == "highs-scaled"
    assert engine().milp.options.node_limit == ENGINE_NODE_LIMIT
    mine = engine(backend="direct", node_limit=7)
    assert mine.milp.backend == "direct" and mine.milp.options.node_limit == 7


def test_same_answer_every_run() -> None:
    inst = generate_stream(Scenario(users=60, servers=4), seed=5).instance(0, None)
    a, b = judge(engine(), inst), judge(engine(), inst)
    assert np.array_equal(a.action, b.action)
    assert a.info.get("certificate") == b.info.get("certificate")
    assert a.info.get("lagrangian_rounds") == b.info.get("lagrangian_rounds")


@pytest.fixture(scope="module")
def one_short() -> Instance:
    """A (100, 4) state where HiGHS stopped at its root (--node-limit 1) leaves an incumbent
    the ascent's bound cannot reach but proves one below."""
    return rollout_state(Scenario(users=100, servers=4), 1, 3)


def _agrees_with_plain_highs(inst: Instance, sol) -> None:
    ref = solve_direct(inst, SolveOptions())
    assert ref.info["stage2_status"] == "optimal"
    assert sol.metrics["migrated"] == simulator.apply(inst, ref.action).migrated
    assert close(sol.cloud_load_bytes, simulator.apply(inst, ref.action).cloud_load_bytes)
    assert verify(inst, as_json(sol)) == []


def test_one_below_search_proves_by_fixing(one_short: Instance) -> None:
    """Without the tree search: on the pairs that reduced-cost fixing leaves HiGHS finds
    nothing better, so the engine proves the tie-break by fixing (no certificate). Plain
    HiGHS with no limit agrees."""
    sol = judge(engine(time_limit_s=60.0, node_limit=1, tree_rounds=0), one_short)
    assert sol.info["stage2_proof"] == "fixing", sol.info
    assert sol.info["stage2_highs_status"] == "work_limit"
    assert sol.info["stage2_status"] == "optimal" and sol.info["fixed_pairs"] > 0
    assert "migrations" not in sol.info.get("certificate", {})  # fixing gives no certificate
    assert "tree_status" not in sol.info
    _agrees_with_plain_highs(one_short, sol)


def test_the_tree_search_proves_it_with_a_certificate(one_short: Instance) -> None:
    """By default the tree search settles the same state, and its tree is the certificate
    that verify re-checks leaf by leaf (the root's bound alone proves only one below)."""
    sol = judge(engine(time_limit_s=60.0, node_limit=1), one_short)
    assert sol.info["stage2_proof"] == "tree", sol.info
    assert sol.info["tree_status"] == "optimal" and sol.info["tree_nodes"] >= 2
    mig = sol.info["certificate"]["migrations"]
    assert "tree" in mig and mig["tree_multipliers"]
    assert math.ceil(mig["bound"] - 1e-6) >= sol.metrics["migrated"]
    _agrees_with_plain_highs(one_short, sol)


def _first_branch(tree: list[dict]) -> int:
    return next(i for i, node in enumerate(tree) if len(node.get("children", [])) >= 2)


def _drop_child(tree: list[dict]) -> None:
    tree[_first_branch(tree)]["children"].pop()


def _false_infeasible(tree: list[dict]) -> None:
    i = _first_branch(tree)
    tree[i + 1 :] = [{"infeasible": True}, *tree[i + 1 :]]  # a leaf too many, first of all


def _bad_user(tree: list[dict]) -> None:
    tree[_first_branch(tree)]["user"] = -1


def _bad_index(tree: list[dict]) -> None:
    leaf = next(i for i, node in enumerate(tree) if "multipliers" in node)
    tree[leaf] = {"multipliers": 10**6}


def _truncated(tree: list[dict]) -> None:
    del tree[-1]


@pytest.mark.parametrize(
    "tamper, message",
    [
        # a branch that leaves out one of its user's ESs covers only part of the plans
        (_drop_child, "must be its admissible ESs"),
        # an infeasible leaf where its users fit (and, after it, one node too many)
        (_false_infeasible, "not infeasible"),
        (_bad_user, "not a served user"),
        (_bad_index, "multipliers"),
        (_truncated, "ends before"),
    ],
)
def test_a_tampered_tree_is_caught(one_short: Instance, tamper, message: str) -> None:
    sol = judge(engine(time_limit_s=60.0, node_limit=1), one_short)
    doc = copy.deepcopy(as_json(sol))
    tamper(doc["info"]["certificate"]["migrations"]["tree"])
    problems = verify(one_short, doc)
    assert any(message in p for p in problems), problems


def test_zeroed_tree_multipliers_prove_nothing(one_short: Instance) -> None:
    """Valid multipliers that bound too low: verify's recomputed leaves no longer reach the
    claim."""
    sol = judge(engine(time_limit_s=60.0, node_limit=1), one_short)
    doc = copy.deepcopy(as_json(sol))
    mig = doc["info"]["certificate"]["migrations"]
    mig["tree_multipliers"] = [[0.0] * one_short.n_users for _ in mig["tree_multipliers"]]
    problems = verify(one_short, doc)
    assert any("give only" in p for p in problems), problems


def test_a_rollout_repeats_and_sizes_can_change() -> None:
    """Each step is solved on its own (no state carried between steps): two fresh engines on
    the same rollout give the same steps, and one engine moves between systems of different
    sizes."""

    def rollout(method) -> list:
        stream = generate_stream(Scenario(users=60, servers=4), seed=7, steps=4)
        server, out = None, []
        for t in range(4):
            sol = judge(method, stream.instance(t, server), t)
            server = sol.final_server
            out.append((sol.action.tolist(), sol.info.get("certificate")))
        return out

    assert rollout(engine()) == rollout(engine())
    method = engine()
    for users, servers in ((60, 4), (30, 2), (60, 4)):
        inst = generate_stream(Scenario(users=users, servers=servers), seed=2).instance(0)
        sol = judge(method, inst)
        assert sol.status == "optimal" and verify(inst, as_json(sol)) == []


@pytest.mark.parametrize("second_stage", ["none", "downtime"])
def test_other_tie_breaks_are_milps(second_stage: str) -> None:
    """Without the migrations tie-break the engine is milp with the engine's defaults (plus a
    load certificate)."""
    inst = generate_stream(Scenario(users=40, servers=3), seed=4).instance(0)
    sol = judge(engine(second_stage=second_stage), inst)
    defaults = MethodSettings(
        second_stage=second_stage, backend=ENGINE_BACKEND, node_limit=ENGINE_NODE_LIMIT
    )
    ref = judge(registry.make_method(registry.REFERENCE, defaults), inst)
    assert np.array_equal(sol.action, ref.action)
    assert sol.info["stage2_status"] == ref.info["stage2_status"]
    assert "migrations" not in sol.info.get("certificate", {})
    assert verify(inst, as_json(sol)) == []


# --- the tree search ---------------------------------------------------------------------


def _fewest_migrations(problem, served: np.ndarray) -> float:
    """Brute force over every placement of the served users on their pairs (the migrations
    stage's own feasible set): the fewest migrations of a plan that fits every ES."""
    p = problem.pairs
    pair_cost, cloud_cost = problem.second_stage_costs("migrations")
    options = [np.flatnonzero(p.user == u) for u in np.flatnonzero(served)]
    best = math.inf
    for combo in itertools.product(*options):
        chosen = np.zeros(p.n_pairs, dtype=bool)
        chosen[list(combo)] = True
        if problem.fits(chosen).all():
            best = min(best, float(cloud_cost[~served].sum() + pair_cost[chosen].sum()))
    return best


def test_the_tree_search_equals_brute_force_from_a_weak_start() -> None:
    """From zero multipliers, two rounds a node and stage 1's plan (no tie-break) as the
    incumbent, so that the tree must branch and improve: on 240 tiny instances of every size
    and both families it closes at the brute-force optimum, and verify's own knapsacks
    re-check every leaf of its tree."""
    from dtasm_opt.core.certificate import tree_bound
    from dtasm_opt.solvers.exact.lagrangian_tree import branch_and_bound

    sizes = [(u, h) for u in range(2, 6) for h in range(1, 4)]
    branched = improved = 0
    for seed in range(240):
        users, servers = sizes[seed % len(sizes)]
        inst = tiny_instance(seed, users, servers, overloaded=seed % 2 == 1)
        stage1 = judge(engine(second_stage="none"), inst)
        problem = step_problem(inst)
        chosen = stage1.action[problem.pairs.user] == problem.pairs.server
        served = problem.served(chosen)
        if not served.any():
            continue
        dual = migrations_dual(problem, served)
        start = dual.value(chosen)
        tree = branch_and_bound(
            dual,
            np.zeros(inst.n_users),
            chosen,
            node_limit=10_000,
            round_limit=100_000,
            node_rounds=2,
        )
        assert tree.proven, seed
        assert tree.incumbent == _fewest_migrations(problem, served), seed
        assert problem.fits(tree.plan).all() and dual.value(tree.plan) == tree.incumbent
        # preorder, flat: a certificate file never nests as deep as its tree
        for node in tree.tree:
            assert set(node) <= {"user", "children", "multipliers", "infeasible"}
            assert all(isinstance(h, int) for h in node.get("children", []))
        part = {"tree": tree.tree, "tree_multipliers": tree.multipliers}
        least, problems = tree_bound(inst, part, dual.grid_hz, served)
        assert problems == [], (seed, problems)
        assert math.ceil(least - 1e-6) >= tree.incumbent, seed
        assert least >= tree.bound - 1e-9, seed  # verify's leaves bound at least as high
        branched += tree.nodes > 1
        improved += tree.incumbent < start
    assert branched >= 30 and improved >= 10, (branched, improved)


def test_the_tree_search_repeats_itself(one_short: Instance) -> None:
    a = judge(engine(time_limit_s=60.0, node_limit=1), one_short)
    b = judge(engine(time_limit_s=60.0, node_limit=1), one_short)
    assert np.array_equal(a.action, b.action)
    assert a.info["certificate"] == b.info["certificate"]
    assert (a.info["tree_nodes"], a.info["tree_rounds"]) == (
        b.info["tree_nodes"],
        b.info["tree_rounds"],
    )
