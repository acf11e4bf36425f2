"""Plans from the knapsacks' picks (:mod:`solvers.exact.restricted_mip`).

The reference is independent of it: brute force over every plan serving stage 1's users.
"""

from __future__ import annotations

import numpy as np
from bruteforce import plans_serving
from engine_method import tiny_tie_breaks

from dtasm_opt.solvers.exact.lagrangian import ascend, lp_multipliers
from dtasm_opt.solvers.exact.restricted_mip import marginal_order, restricted_plan


def _fewest(problem, dual) -> float:
    return min(dual.value(plan) for plan in plans_serving(problem, dual.rows))


def test_every_plan_fits_and_with_every_user_free_it_is_the_optimum() -> None:
    """On 120 tiny instances of both families, at the LP duals and after a short ascent:
    any plan returned fits, serves exactly stage 1's users and is no better than brute
    force; with every user free (the whole stage as one MIP) it is the brute-force optimum."""
    checked = optimal = 0
    for _, _, problem, chosen, dual in tiny_tie_breaks(120):
        fewest = _fewest(problem, dual)
        lam = lp_multipliers(dual)
        for multipliers in (lam, ascend(dual, lam, chosen, 10).multipliers):
            for free in (0, 1, 2, problem.n_users):
                plan = restricted_plan(dual, multipliers, free)
                if plan is None:
                    continue
                checked += 1
                assert problem.fits(plan).all()
                served = np.bincount(problem.pairs.user[plan], minlength=problem.n_users)
                assert np.all(served[dual.rows] == 1) and np.all(served[~dual.rows] == 0)
                assert dual.value(plan) >= fewest
                if free == problem.n_users:
                    assert dual.value(plan) == fewest
                    optimal += 1
    assert checked > 200 and optimal > 100


def test_marginal_order_holds_each_single_pick_once_and_repeats() -> None:
    for _, _, _, chosen, dual in tiny_tie_breaks(30):
        lam = ascend(dual, lp_multipliers(dual), chosen, 5).multipliers
        _, picked = dual.evaluate(lam)
        order = marginal_order(dual, lam, picked)
        once = np.flatnonzero(dual.rows & (dual.taken(picked) == 1))
        assert sorted(order.tolist()) == once.tolist()
        again = restricted_plan(dual, lam, 1)
        first = restricted_plan(dual, lam, 1)
        assert (again is None) == (first is None)
        if first is not None:
            assert np.array_equal(first, again)
