"""The regret heuristic that serves everyone (:mod:`solvers.exact.regret_plan`).

The reference is independent of it: brute force over every plan placing each user with an
admissible pair.
"""

from __future__ import annotations

import numpy as np
from bruteforce import everyone_cases, tiny_instance

import dtasm_opt.solvers.exact.restricted_mip as rm
from dtasm_opt.models.step_problem import step_problem
from dtasm_opt.solvers.exact.regret_plan import _regret, regret_plan


def test_a_plan_serves_everyone_and_fits_and_comes_only_where_one_exists() -> None:
    """On 200 tiny instances of both families: a plan comes back only where brute force finds
    one, fits, and places every user with an admissible pair exactly once; it finds most of
    the plans that exist (a greedy, so not all)."""
    found = exists_count = 0
    for problem, has_pair, exists in everyone_cases(200):
        exists_count += exists
        plan = regret_plan(problem)
        if plan is None:
            continue
        assert exists
        found += 1
        assert problem.fits(plan).all()
        served = np.bincount(problem.pairs.user[plan], minlength=problem.n_users)
        assert np.array_equal(served, has_pair.astype(int))
    assert exists_count > 60 and found >= 0.95 * exists_count, (found, exists_count)


def test_the_user_with_one_es_left_goes_first() -> None:
    """User 0 fits ES 0 or ES 1, user 1 only ES 0, and ES 0 holds one of them: in index order
    user 0 would take ES 0 (its smaller share) and user 1 would find no room; by regret user 1
    (one option: an infinite regret) goes first."""
    start = np.array([0, 2, 3])
    by_user = np.array([0, 1, 2])  # pairs: (user 0, ES 0), (user 0, ES 1), (user 1, ES 0)
    server = np.array([0, 1, 0])
    weight = np.array([5.0, 5.5, 5.0])
    picks = _regret(start, by_user, server, weight, np.array([5.0, 6.0]))
    assert picks is not None and sorted(picks.tolist()) == [1, 2]
    # and where no order fits, None
    assert _regret(start, by_user, server, weight, np.array([5.0, 5.0])) is None


def test_serve_everyone_falls_back_on_regret_where_the_search_stops() -> None:
    """With no nodes the search stops at once: the plan is the heuristic's, marked so."""
    regret = 0
    for seed in range(0, 40, 2):
        problem = step_problem(tiny_instance(seed, 6, 3, overloaded=False))
        plan, how = rm.serve_everyone(problem, 0)
        expected = regret_plan(problem)
        if expected is None:
            assert plan is None and how in ("missed", "overloaded")
        else:
            assert how == "regret" and np.array_equal(plan, expected)
            regret += 1
    assert regret >= 10, regret
