"""The large-neighbourhood search of the tie-break (:mod:`solvers.exact.server_neighbourhoods`).

The reference is independent of it: brute force over every plan serving stage 1's users.
"""

from __future__ import annotations

import numpy as np
from bruteforce import plans_serving
from engine_method import tiny_tie_breaks

from dtasm_opt.solvers.exact.server_neighbourhoods import server_pair_search


def test_plans_fit_never_get_worse_and_two_servers_are_the_optimum() -> None:
    """On 120 tiny instances of both families, from stage 1's plan: the plan fits, serves
    exactly stage 1's users, is no worse than the start and no better than brute force; at
    one or two ESs one neighbourhood holds every user, so the plan is the optimum."""
    exact = improved = 0
    for _, _, problem, chosen, dual in tiny_tie_breaks(120):
        fewest = min(dual.value(plan) for plan in plans_serving(problem, dual.rows))
        plan, tried = server_pair_search(dual, chosen, goal=-np.inf)
        assert problem.fits(plan).all()
        served = np.bincount(problem.pairs.user[plan], minlength=problem.n_users)
        assert np.all(served[dual.rows] == 1) and np.all(served[~dual.rows] == 0)
        assert fewest <= dual.value(plan) <= dual.value(chosen)
        assert 1 <= tried
        improved += dual.value(plan) < dual.value(chosen)
        if problem.n_servers <= 2:
            assert dual.value(plan) == fewest
            exact += 1
    assert exact > 50 and improved > 5


def test_the_limits_are_kept_and_the_same_plan_every_run() -> None:
    """No neighbourhood with ``tries=0``; none once the start reaches the goal; at most
    ``tries``; the same plan and count on a second run."""
    for _, _, _, chosen, dual in tiny_tie_breaks(60):
        plan, tried = server_pair_search(dual, chosen, -np.inf, tries=0)
        assert tried == 0 and np.array_equal(plan, chosen)
        plan, tried = server_pair_search(dual, chosen, dual.value(chosen))
        assert tried == 0 and np.array_equal(plan, chosen)
        first = server_pair_search(dual, chosen, -np.inf, tries=2)
        again = server_pair_search(dual, chosen, -np.inf, tries=2)
        assert first[1] <= 2 and first[1] == again[1]
        assert np.array_equal(first[0], again[0])
