"""Plans from the knapsacks' picks (:mod:`solvers.exact.restricted_mip`).

The reference is independent of it: brute force over every plan serving stage 1's users.
"""

from __future__ import annotations

import numpy as np
from bruteforce import plans_serving
from engine_method import tiny_tie_breaks

import dtasm_opt.solvers.exact.restricted_mip as rm
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


def _random_restricted(rng: np.random.Generator):
    """A restricted problem as the engine hands it over: users (sorted ids), their options
    (each with a weight on its ES), costs 0 (the user's own ES, most have one) or 1, and the
    room left on each ES, tight enough that some users must move or find no place."""
    n, h = int(rng.integers(3, 11)), int(rng.integers(2, 5))
    users = np.sort(rng.choice(40, size=n, replace=False))
    user, server, weight, cost = [], [], [], []
    for u in users:
        options = rng.choice(h, size=int(rng.integers(1, h + 1)), replace=False)
        stays = rng.random() < 0.8
        for i, s in enumerate(options):
            user.append(u)
            server.append(s)
            weight.append(rng.uniform(1e9, 5e9))
            cost.append(0.0 if stays and i == 0 else 1.0)
    user, server = np.array(user), np.array(server)
    weight, cost = np.array(weight), np.array(cost)
    need = np.bincount(server, weights=weight, minlength=h) / max(1, n // h)
    room = need * rng.uniform(0.3, 1.6, size=h)
    return cost, user, server, weight, users, room


def _plan_ok(x, cost, user, server, weight, users, room) -> bool:
    used = np.bincount(server[x], weights=weight[x], minlength=room.size)
    return bool(np.all(used <= room)) and np.array_equal(np.sort(user[x]), users)


def test_search_equals_highs_on_random_restricted_problems(monkeypatch) -> None:
    """The depth-first search against HiGHS without a node limit (two exact methods), on 400
    random restricted problems: the same optimum, or both find no plan; at the node limit
    restricted_plan's HiGHS fallback answers; with ``stop_at`` the search stops at a plan
    that costs no more than that."""
    rng = np.random.default_rng(11)
    solved = infeasible = stopped = 0
    for _ in range(400):
        args = _random_restricted(rng)
        cost = args[0]
        status, x = rm._search(*args)
        highs, y = rm._solve(*args, node_limit=10**6)
        assert status in ("optimal", "infeasible")  # tiny problems finish
        if status == "infeasible":
            assert y is None and highs == "infeasible"
            infeasible += 1
            continue
        assert highs == "found" and y is not None and _plan_ok(x, *args)
        assert cost[x].sum() == cost[y].sum()
        solved += 1
        if cost[x].sum() >= 1:
            status, z = rm._search(*args, stop_at=cost[x].sum() + 1)
            assert status == "optimal" and _plan_ok(z, *args)
            assert cost[z].sum() <= cost[x].sum() + 1
            stopped += 1
    assert solved > 150 and infeasible > 20 and stopped > 50
    # two free options for one user: the bound would not hold, so HiGHS decides
    two_free = (np.zeros(2), np.array([3, 3]), np.array([0, 1]), np.ones(2), np.array([3]),
                np.full(2, 5.0))  # fmt: skip
    assert rm._search(*two_free)[0] == "limit"
    monkeypatch.setattr(rm, "SEARCH_NODES", 0)
    assert rm._search(*_random_restricted(rng))[0] == "limit"
    for _, _, problem, _, dual in tiny_tie_breaks(20):  # HiGHS alone: the optimum again
        plan = restricted_plan(dual, lp_multipliers(dual), problem.n_users)
        assert plan is not None and dual.value(plan) == _fewest(problem, dual)


def _plans_exactly_where_one_exists(decide, found_as: str) -> None:
    """``decide(problem)`` -> (plan, how) on tiny instances of both families: a plan exactly
    where brute force finds one that places every user with an admissible pair (found
    ``found_as``), fitting and placing each of them once; "overloaded" where there is none."""
    from bruteforce import everyone_cases

    found = none = 0
    for problem, has_pair, exists in everyone_cases(150):
        plan, how = decide(problem)
        assert (plan is not None) == exists
        assert how == (found_as if exists else "overloaded")
        if plan is None:
            none += 1
            continue
        found += 1
        assert problem.fits(plan).all()
        served = np.bincount(problem.pairs.user[plan], minlength=problem.n_users)
        assert np.array_equal(served, has_pair.astype(int))
    assert found > 50 and none > 20, (found, none)


def test_serve_everyone_finds_a_plan_exactly_where_one_exists() -> None:
    """The engine's stage 1 without HiGHS, with search nodes enough to finish."""
    _plans_exactly_where_one_exists(lambda problem: rm.serve_everyone(problem, 10**6), "search")


def test_where_search_and_regret_miss_highs_decides(monkeypatch) -> None:
    """With the search cut at once and the regret heuristic missing, HiGHS's first plan on
    "everyone served" decides, found as "mip"; with no HiGHS nodes nothing is decided."""
    monkeypatch.setattr(rm, "regret_plan", lambda problem: None)

    def decide(problem):
        assert rm.serve_everyone(problem, 0) == (None, "missed")
        return rm.serve_everyone(problem, 0, 10**6)

    _plans_exactly_where_one_exists(decide, "mip")
