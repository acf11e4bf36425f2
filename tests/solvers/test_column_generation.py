"""Column generation for the tie-break's bound (:mod:`solvers.exact.column_generation`).

The reference is independent of it: the Dantzig-Wolfe bound from *every* packing of every
ES (enumerated subsets that fit the grid) in one LP, and brute force over every plan of the
served set for the optimum.
"""

from __future__ import annotations

import itertools
import math

import highspy
import numpy as np
from bruteforce import plans_serving, tiny_instance
from engine_method import as_json, engine, stage1_tie_break, tiny_tie_breaks

from dtasm_opt.core.generator import Scenario
from dtasm_opt.core.solution import judge
from dtasm_opt.core.verify import verify
from dtasm_opt.experiments.states import rollout_state
from dtasm_opt.solvers.exact.column_generation import column_generation
from dtasm_opt.solvers.exact.grid_knapsack import capacity_units, floor_units


def _dantzig_wolfe(dual) -> float:
    """min sum cost(S) y_S over all packings S of every ES (on the grid), every served user
    covered once, at most one packing per ES: the bound column generation converges to."""
    problem, p = dual.problem, dual.problem.pairs
    users = np.flatnonzero(dual.rows)
    row = {int(u): i for i, u in enumerate(users)}
    server = p.server[dual.pair_ids]
    units = floor_units(p.required_hz[dual.pair_ids], dual.grid_hz)
    lp = highspy.Highs()
    lp.setOptionValue("output_flag", False)
    n = users.size + problem.n_servers
    lower = np.concatenate((np.ones(users.size), np.full(problem.n_servers, -np.inf)))
    lp.addRows(n, lower, np.ones(n), 0, np.zeros(1, np.int32), np.zeros(0, np.int32), np.zeros(0))
    for h in range(problem.n_servers):
        cap = capacity_units(float(problem.capacity_hz[h]), dual.grid_hz)
        mine = np.flatnonzero(server == h)
        for size in range(mine.size + 1):
            for subset in itertools.combinations(mine.tolist(), size):
                ks = np.array(subset, dtype=int)
                owners = p.user[dual.pair_ids[ks]]
                if units[ks].sum() > cap or len(set(owners.tolist())) < ks.size:
                    continue  # too heavy, or one user twice on the same ES
                idx = np.array([row[int(u)] for u in owners] + [users.size + h], np.int32)
                lp.addCol(float(dual.cost[ks].sum()), 0.0, np.inf, idx.size, idx, np.ones(idx.size))
    lp.run()
    assert lp.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return dual.const + lp.getInfo().objective_function_value


def test_column_generation_reaches_the_dantzig_wolfe_bound_and_never_passes_the_optimum() -> None:
    """On 120 tiny instances of both families, from zero multipliers and stage 1's plan. Run
    to the end, it converges, and its bound equals the Dantzig-Wolfe bound from all packings
    (never above the brute-force optimum); as the engine runs it (stopping once the incumbent
    is proven or cannot be), it proves only optima and stops short only where the full bound
    cannot prove either. Its multipliers reproduce its bound, and its plan fits."""
    statuses: dict[str, int] = {}
    for seed, inst, problem, chosen, dual in tiny_tie_breaks(120):
        served = dual.rows
        dw = _dantzig_wolfe(dual)
        fewest = min(dual.value(plan) for plan in plans_serving(problem, served))
        full = column_generation(dual, np.zeros(inst.n_users), chosen, 10_000, prove=False)
        assert full.status == "converged", (seed, full.status)
        assert math.isclose(full.bound, dw, abs_tol=1e-6), (seed, full.bound, dw)
        assert math.isclose(full.master, dw, abs_tol=1e-6), (seed, full.master, dw)
        assert dw <= fewest + 1e-9, seed
        cg = column_generation(dual, np.zeros(inst.n_users), chosen, 10_000)
        statuses[cg.status] = statuses.get(cg.status, 0) + 1
        assert cg.status in ("proven", "converged", "short"), (seed, cg.status)
        assert cg.bound <= dw + 1e-7, seed
        if cg.status == "proven":
            assert cg.incumbent == fewest and math.ceil(cg.bound - 1e-6) >= fewest, seed
        else:
            assert math.ceil(dw - 1e-6) < cg.incumbent, seed
        # With a slack of 2 (the engine beyond the tree's reach) it stops short only where the
        # full bound cannot come within 2 of its incumbent, and it goes at least as far.
        near = column_generation(dual, np.zeros(inst.n_users), chosen, 10_000, slack=2)
        assert near.bound >= cg.bound and near.bound <= dw + 1e-7, seed
        if near.status == "short":
            assert math.ceil(dw - 1e-6) < near.incumbent - 2, seed
        for run in (full, cg, near):
            assert dual.evaluate(run.multipliers)[0] == run.bound
            assert problem.fits(run.plan).all() and dual.value(run.plan) == run.incumbent
            assert fewest <= run.incumbent <= dual.value(chosen)
    assert statuses.get("proven", 0) >= 20, statuses


def test_column_generation_repeats_itself_and_keeps_its_start() -> None:
    """Two runs give the same numbers; one round is the start's own bound."""
    inst = tiny_instance(7, 5, 3, overloaded=True)
    _, chosen, dual = stage1_tie_break(inst)
    start = np.full(inst.n_users, 0.5)
    a = column_generation(dual, start, chosen, 50)
    b = column_generation(dual, start, chosen, 50)
    assert (a.bound, a.iterations, a.status) == (b.bound, b.iterations, b.status)
    assert a.master == b.master
    assert np.array_equal(a.multipliers, b.multipliers)
    one = column_generation(dual, start, chosen, 1)
    assert one.iterations == 1 and one.bound == dual.evaluate(start * dual.rows)[0]
    assert a.bound >= one.bound


def test_the_engine_certifies_where_the_ascent_stops_one_short() -> None:
    """A (120, 4) state where HiGHS stops at its root (--node-limit 1, seed 2 step 3; seed 5
    step 0 was one until the load stage's plans from its multipliers changed its users): the
    ascent's bound proves one migration fewer than the incumbent, and column generation from
    its end proves it, a certificate that verify re-checks. Without column generation
    (--column-rounds 0) the engine proves the same count by fixing, HiGHS's search on the
    pairs the bound leaves (an independent proof, without a certificate). Both without the
    neighbourhood search, which finds the same plan before HiGHS is asked: column generation
    then proves it there, and HiGHS's stage 2 does not run."""
    inst = rollout_state(Scenario(users=120, servers=4), 2, 3)
    method = engine(seed=2, time_limit_s=60.0, node_limit=1, tree_rounds=0)
    first = judge(method, inst)
    assert first.info["neighbourhood_objective"] == first.metrics["migrated"]
    assert first.info["stage2_proof"] == "certificate" and first.info["stage2_nodes"] == 0
    assert first.info["column_status"] == "proven"
    assert verify(inst, as_json(first)) == []
    method.tie_break.neighbourhood_tries = 0
    sol = judge(method, inst)
    info = sol.info
    assert info["stage2_highs_status"] == "work_limit"
    assert info["stage2_proof"] == "certificate", info
    migrated = sol.metrics["migrated"]
    assert math.ceil(info["ascent_bound"] - 1e-6) < migrated
    assert math.ceil(info["lagrangian_bound"] - 1e-6) >= migrated
    assert info["column_status"] == "proven" and info["column_rounds"] > 1
    mig = info["certificate"]["migrations"]
    assert mig["proves_optimal"] and "tree" not in mig
    assert verify(inst, as_json(sol)) == []
    plain_method = engine(seed=2, time_limit_s=60.0, node_limit=1, tree_rounds=0, column_rounds=0)
    plain_method.tie_break.neighbourhood_tries = 0
    plain = judge(plain_method, inst)
    assert "column_rounds" not in plain.info and "ascent_bound" not in plain.info
    assert plain.info["stage2_proof"] == "fixing", plain.info
    assert plain.cloud_load_bytes == sol.cloud_load_bytes
    assert plain.metrics["migrated"] == migrated == first.metrics["migrated"]


def test_column_reach_takes_column_generation_to_a_bound_further_short() -> None:
    """A (60, 2) state (seed 4, step 2; HiGHS at its root, no neighbourhood search) whose
    ascent stops four migrations short of the plan: within the default reach column
    generation does not run and the tie-break stays open; with --column-reach 4 it climbs to
    the Dantzig-Wolfe bound, which proves the same plan, a certificate that verify
    re-checks. Stock HiGHS's tie-break, unlimited, proves the same count independently."""
    from dtasm_opt.core.method import MethodSettings
    from dtasm_opt.solvers import registry

    inst = rollout_state(Scenario(users=60, servers=2), 4, 2)
    common = dict(time_limit_s=60.0, node_limit=1, neighbourhood_tries=0)
    near = judge(engine(**common, column_reach=3), inst)
    assert near.status == "optimal"  # the load stage: the reach is for proven ones
    assert near.info["stage2_status"] == "work_limit" and "column_status" not in near.info
    far = judge(engine(**common, column_reach=4), inst)
    info = far.info
    migrated = far.metrics["migrated"]
    assert migrated - math.ceil(info["ascent_bound"] - 1e-6) == 4
    assert (info["column_status"], info["stage2_proof"]) == ("proven", "certificate")
    assert info["stage2_status"] == "optimal" and info["certificate"]["migrations"]
    assert verify(inst, as_json(far)) == []
    assert far.cloud_load_bytes == near.cloud_load_bytes
    stock = judge(registry.make_method("milp", MethodSettings(time_limit_s=120.0)), inst)
    assert stock.info["stage2_status"] == "optimal"
    assert stock.metrics["migrated"] == migrated


def test_the_reaches_are_2_at_most_where_the_load_stage_is_open() -> None:
    """The rule itself: ``column_reach`` and ``tree_reach`` on a step whose load stage is
    proven, at most 2 (``OPEN_LOAD_REACH``) where it is open (there a proven tie-break proves no
    step, and at U = 280 every tie-break is far short); 0 turns either off."""
    from dtasm_opt.solvers.exact import tie_break as tb

    default = engine().tie_break
    assert default.reach_of(True) == tb.Reach(tb.COLUMN_REACH, tb.TREE_REACH_PROVEN)
    assert default.reach_of(False) == tb.Reach(tb.OPEN_LOAD_REACH, tb.OPEN_LOAD_REACH)
    assert tb.COLUMN_REACH > tb.TREE_REACH_PROVEN > tb.OPEN_LOAD_REACH == 2
    wide = engine(column_reach=6, tree_reach=4).tie_break
    assert (wide.reach_of(True), wide.reach_of(False)) == (tb.Reach(6, 4), tb.Reach(2, 2))
    off = engine(column_reach=0, tree_reach=0).tie_break
    assert off.reach_of(True) == off.reach_of(False) == tb.Reach(0, 0)


def test_a_slack_goes_on_where_the_bound_can_still_come_within_it() -> None:
    """A (60, 2) state (seed 3, step 1) from stage 1's plan of 20 migrations and the LP
    duals: column generation as the engine runs it within the tree's reach stops short (the
    Dantzig-Wolfe bound cannot prove the incumbent it has then); with a slack of 2, as beyond
    that reach, it goes on, its repaired picks find 18 and its bound proves them. Stock
    HiGHS's tie-break, unlimited, finds the same 18 independently."""
    from dtasm_opt.core.method import MethodSettings
    from dtasm_opt.solvers import registry
    from dtasm_opt.solvers.exact.lagrangian import lp_multipliers

    inst = rollout_state(Scenario(users=60, servers=2), 3, 1)
    _, chosen, dual = stage1_tie_break(inst)
    start = lp_multipliers(dual)
    assert dual.value(chosen) == 20
    strict = column_generation(dual, start, chosen, 300)
    assert strict.status == "short" and math.ceil(strict.master - 1e-6) < strict.incumbent
    near = column_generation(dual, start, chosen, 300, slack=2)
    assert near.status == "proven" and near.incumbent == 18
    assert near.bound >= strict.bound and math.ceil(near.bound - 1e-6) == 18
    assert dual.evaluate(near.multipliers)[0] == near.bound
    stock = judge(registry.make_method("milp", MethodSettings(time_limit_s=120.0)), inst)
    assert stock.info["stage2_status"] == "optimal" and stock.metrics["migrated"] == 18
