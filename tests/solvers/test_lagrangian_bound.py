"""The Lagrangian bound of the ``lagrangian`` engine: its grid knapsack, the bound of each
stage at any multipliers, and the ascent.

References are independent of the engine: brute force over subsets (knapsack), over every
plan of a served set, and over all (H+1)^U actions through the simulator (the step's optimum).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from bruteforce import SEEDS, SIZES, brute_force, plans_serving, tiny_instance
from families import moderate_instance
from hypothesis import given, settings
from hypothesis import strategies as st

from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.experiments.states import rollout_state
from dtasm_opt.models.step_problem import step_problem
from dtasm_opt.solvers.exact import grid_knapsack
from dtasm_opt.solvers.exact.grid_knapsack import (
    DP_CHUNK,
    DP_MAX_UNITS,
    WHOLE_HZ,
    best_subset,
    best_value,
    capacity_units,
    floor_units,
    good_subset,
)
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

# --- the grid knapsack -------------------------------------------------------------------


def _brute_force_knapsack(units: np.ndarray, values: np.ndarray, cap: int) -> float:
    best = 0.0
    for mask in itertools.product((False, True), repeat=units.size):
        m = np.array(mask)
        if units[m].sum() <= cap:
            best = max(best, values[m].sum())
    return best


@settings(max_examples=200)
@given(seed=SEEDS, n=st.integers(1, 9))
def test_best_subset_equals_brute_force_on_integers(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    units = rng.integers(0, 30, size=n)
    values = rng.normal(1.0, 1.0, size=n)
    cap = int(rng.integers(0, 60))
    value, chosen, table = best_subset(units, values, cap)
    best = _brute_force_knapsack(units, values, cap)
    assert math.isclose(value, best, rel_tol=1e-12, abs_tol=1e-12)
    assert units[chosen].sum() <= cap and math.isclose(values[chosen].sum(), value, abs_tol=1e-12)
    assert np.all(values[chosen] > 0)
    assert table.shape == (cap + 1,) and np.all(np.diff(table) >= 0)


def _cell_by_cell(units, values, cap):
    """best_subset's DP as the textbook loop, one cell at a time (plain Python): the table
    and the subset it must reproduce bit for bit."""
    take = np.flatnonzero((values > 0) & (units <= cap))
    best = [0.0] * (cap + 1)
    took = [[False] * (cap + 1) for _ in take]
    for i, k in enumerate(take):
        w, v = int(units[k]), float(values[k])
        for c in range(cap, w - 1, -1):
            if best[c - w] + v > best[c]:
                best[c] = best[c - w] + v
                took[i][c] = True
    chosen = np.zeros(units.size, dtype=bool)
    c = cap
    for i in range(take.size - 1, -1, -1):
        if took[i][c]:
            chosen[take[i]] = True
            c -= int(units[take[i]])
    return np.array(best), chosen


@settings(max_examples=150, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 12), ties=st.booleans(), trim=st.booleans())
def test_chunked_dp_is_the_cell_by_cell_loop_to_the_last_bit(
    seed: int, n: int, ties: bool, trim: bool
):
    """The DP sweeps its table in vectorised chunks, skips the cells that every item so far
    fits (they hold the sum of all), and with ``lowest`` the cells no later read needs; it
    must give the very table (from ``lowest`` up) and subset of the plain loop (a changed bit
    could change a penalty, hence a decision): weights from 0 to twice a chunk, capacities
    over several chunks, and whole-number values whose sums tie often (the loop keeps the
    earlier subset on a tie)."""
    rng = np.random.default_rng(seed)
    units = rng.integers(0, 2 * DP_CHUNK, size=n)
    values = rng.integers(-2, 6, size=n).astype(float) if ties else rng.normal(1.0, 1.0, n)
    cap = int(rng.integers(0, 3 * DP_CHUNK))
    lowest = int(rng.integers(0, cap + 1)) if trim else 0
    _, chosen, table = best_subset(units, values, cap, lowest)
    want_table, want_chosen = _cell_by_cell(units, values, cap)
    assert np.array_equal(table[lowest:], want_table[lowest:])  # exact: no tolerance
    if ((values > 0) & (units <= cap)).any():  # else no DP: a table of zeros, exact
        assert np.isnan(table[:lowest]).all()  # never computed, so never readable
    assert np.array_equal(chosen, want_chosen)


def test_the_dp_keeps_a_sum_that_absorbs_an_item_as_the_loop_does() -> None:
    """Where every item so far fits, the DP writes no cell: it keeps their float sum, and
    whether the next item raised it. An item too small to change that sum (1.0 after 1e17)
    is taken by no such cell, in the loop as here, and the subset must say so."""
    units = np.array([3, 2, 4, 1])
    values = np.array([1e17, 1.0, 5.0, 1e17])
    for cap in (0, 3, 5, 9, 10, 12):
        for lowest in (0, cap // 2, cap):
            value, chosen, table = best_subset(units, values, cap, lowest)
            want_table, want_chosen = _cell_by_cell(units, values, cap)
            assert np.array_equal(table[lowest:], want_table[lowest:])
            assert np.array_equal(chosen, want_chosen) and value == want_table[cap]


def test_the_dps_record_reuses_one_buffer_up_to_its_cap() -> None:
    """Tables up to TOOK_REUSE_BYTES share the process's buffer (the test above, whose calls
    run one after another through it, shows that nothing stale survives); a larger one gets
    an array of its own, so the buffer never grows past the cap."""
    small = grid_knapsack._took(10, 1_000)
    again = grid_knapsack._took(20, 300)
    assert small.shape == (10, 1_000) and again.shape == (20, 300)
    assert np.shares_memory(small, again)
    cells = grid_knapsack.TOOK_REUSE_BYTES // 4 + 1
    large = grid_knapsack._took(4, cells)
    assert large.shape == (4, cells) and not np.shares_memory(large, small)
    assert grid_knapsack._took_buffer.size <= grid_knapsack.TOOK_REUSE_BYTES


@settings(max_examples=200)
@given(seed=SEEDS, n=st.integers(1, 10), node_limit=st.sampled_from([1, 3, 50_000]))
def test_best_value_equals_brute_force(seed: int, n: int, node_limit: int) -> None:
    """The branch and bound (and, where its node limit stops it, the DP after it) reaches
    the brute-force optimum, with a subset that fits and is worth what it says."""
    rng = np.random.default_rng(seed)
    units = rng.integers(0, 30, size=n)
    values = rng.normal(1.0, 1.0, size=n)
    cap = int(rng.integers(-1, 60))
    value, chosen = best_value(units, values, cap, node_limit)
    best = _brute_force_knapsack(units, values, cap)
    assert math.isclose(value, best, rel_tol=1e-12, abs_tol=1e-12)
    assert units[chosen].sum() <= max(cap, 0)
    assert math.isclose(values[chosen].sum(), value, abs_tol=1e-12)
    assert np.all(values[chosen] > 0)


@pytest.mark.parametrize("proportional", [False, True])
def test_best_value_equals_the_dp_on_engine_sized_knapsacks(proportional: bool) -> None:
    """At the engine's sizes (120 candidates, 80,000 grid units) the value is the DP's. With
    values proportional to weights (a subset-sum, where the bound prunes nothing) the branch
    and bound stops at its node limit and the DP answers: the same value either way."""
    rng = np.random.default_rng(7)
    for _ in range(5):
        units = rng.integers(1_000, 5_000, size=120)
        values = units * 1e-3 if proportional else rng.uniform(-0.5, 1.5, size=120)
        value, chosen = best_value(units, values, 80_000)
        dp, _, _ = best_subset(units, values, 80_000)
        assert math.isclose(value, dp, rel_tol=1e-12)
        assert units[chosen].sum() <= 80_000
        assert math.isclose(values[chosen].sum(), value, rel_tol=1e-12)
        again = best_value(units, values, 80_000)
        assert again[0] == value and np.array_equal(again[1], chosen)


@settings(max_examples=100)
@given(seed=SEEDS, n=st.integers(1, 10), node_limit=st.sampled_from([1, 500_000]))
def test_best_value_beyond_the_dp_table(seed: int, n: int, node_limit: int) -> None:
    """Capacities beyond DP_MAX_UNITS (the load stage's whole-hertz grid): the branch and bound
    is exact; where its node limit stops it, the DP on the grid coarsened to fit the table
    answers, a value at least the optimum (a relaxation) and exactly that grid's optimum."""
    rng = np.random.default_rng(seed)
    units = rng.integers(1, 3 * 10**9, size=n)
    values = rng.normal(1.0, 1.0, size=n)
    cap = int(rng.integers(10**9, 8 * 10**9))
    assert cap > DP_MAX_UNITS
    value, chosen = best_value(units, values, cap, node_limit)
    best = _brute_force_knapsack(units, values, cap)
    factor = -(-cap // DP_MAX_UNITS)
    coarse = _brute_force_knapsack(units // factor, values, cap // factor)
    if node_limit == 1:  # stopped (or done within its one node)
        assert any(math.isclose(value, v, rel_tol=1e-12, abs_tol=1e-12) for v in (coarse, best))
        assert value >= best - 1e-12
    else:
        assert math.isclose(value, best, rel_tol=1e-12, abs_tol=1e-12)
        assert units[chosen].sum() <= cap


@settings(max_examples=200)
@given(seed=SEEDS, n=st.integers(1, 10), big=st.booleans(), limit=st.sampled_from([0, 1, 10**6]))
def test_good_subset_fits_and_is_exact_when_its_search_finishes(
    seed: int, n: int, big: bool, limit: int
) -> None:
    """The plans' knapsack: a subset that fits the grid and takes no item of value <= 0,
    worth the brute-force optimum where the branch and bound finishes, and otherwise at least
    the greedy fill in ratio order, its first leaf (within n + 1 nodes), on small and on
    whole-hertz capacities beyond the DP's table (where best_value would fall back on a DP
    over a coarser grid)."""
    rng = np.random.default_rng(seed)
    scale = 10**8 if big else 1
    units = rng.integers(1, 30, size=n) * scale + rng.integers(0, scale, size=n)
    values = rng.normal(1.0, 1.0, size=n)
    cap = int(rng.integers(0, 60)) * scale
    node_limit = {0: n + 1, 1: 1, 10**6: 10**6}[limit]
    chosen = good_subset(units, values, cap, node_limit)
    assert units[chosen].sum() <= cap and np.all(values[chosen] > 0)
    best = _brute_force_knapsack(units, values, cap)
    if node_limit == 10**6:
        assert math.isclose(values[chosen].sum(), best, rel_tol=1e-12, abs_tol=1e-12)
    elif node_limit == n + 1:
        greedy, room = 0.0, cap
        take = np.flatnonzero((values > 0) & (units <= cap))
        for i in take[np.argsort(-(values[take] / units[take]), kind="mergesort")]:
            if units[i] <= room:
                greedy, room = greedy + values[i], room - units[i]
        assert values[chosen].sum() >= greedy - 1e-12


def test_best_subset_refuses_a_table_beyond_its_limit() -> None:
    with pytest.raises(ValueError, match="too large"):
        best_subset(np.array([10**9]), np.array([1.0]), 10**11)


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
    # the DP (penalties) and the branch and bound (evaluate) sum in different orders
    assert math.isclose(bound, dual.evaluate(lam)[0], rel_tol=1e-12, abs_tol=1e-12)
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
# HiGHS's root incumbent (docs/exact.md, the Lagrangian engine)
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
    inst = generate_stream(Scenario(users=100, servers=4), seed=3).instance(0)
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


def test_whole_hertz_proves_what_the_1_mhz_grid_cannot() -> None:
    """moderate_instance(27): HiGHS proves 43 migrations. 400 rounds on the 1 MHz grid stall at
    a bound of 42.0, whose ceiling proves only 42; on whole hertz the same ascent proves 43
    (bound 42.07) in 15 rounds: the 1 MHz grid lets some ES take a subset that overfills it by
    a few MHz. The whole-hertz bound is never below the 1 MHz one at the same multipliers."""
    inst = moderate_instance(27)
    d = solve_direct(inst, SolveOptions(time_limit_s=60.0))
    assert d.info["stage2_status"] == "optimal"
    problem = step_problem(inst)
    chosen = d.action[problem.pairs.user] == problem.pairs.server
    coarse = migrations_dual(problem, problem.served(chosen))
    fine = migrations_dual(problem, problem.served(chosen), WHOLE_HZ)
    a = ascend(coarse, lp_multipliers(coarse), chosen, 400)
    b = ascend(fine, lp_multipliers(fine), chosen, 400)
    assert not a.proven and b.proven
    assert math.ceil(b.bound - 1e-6) == coarse.value(chosen)
    for lam in (a.multipliers, b.multipliers):
        assert coarse.evaluate(lam)[0] <= fine.evaluate(lam)[0] + 1e-9
