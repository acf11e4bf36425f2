"""Better tie-break plans from the best one so far: the users of two ESs re-placed at a time
(a large-neighbourhood search).

Where the restricted MIPs (:mod:`.restricted_mip`) leave the tie-break unproven, HiGHS's
stage 2 used to be the only way on. On bench_exact's 70 rollout states at (200, 8), 24 got
that far; HiGHS's better plans differ from the engine's in 12-17 users, not a short chain of
moves, and the knapsacks' margins rank those users anywhere. Freeing the 20-60 most marginal
users around the incumbent helped on 13 of the 24, little each time, and never on s1-t5 or
s1-t6, where re-placing the users of two ESs alone finds a plan one migration better. So each
neighbourhood here frees every user placed on ES a or ES b or whose free pair (staying) is
there, keeps everyone else where the incumbent has them, and places the freed ones at least
cost (:func:`.restricted_mip.place_loose`: the depth-first search, HiGHS with a node limit
where it does not finish; 41-79 users at (200, 8)). The pairs (a, b) are visited in turn,
on from where the last better plan was found, until a whole round of them finds nothing, the
plan reaches the caller's goal (what the bound proves), or ``NEIGHBOURHOOD_TRIES``
neighbourhoods (a work limit: the same plan on every run). On those 24 states: better plans
on 18 (by 1-15 migrations), in 0.03-32 s; three ESs at a time found a little more at 5-10
times the cost (docs/design.md §9).
"""

from __future__ import annotations

import itertools

import numpy as np

from dtasm_opt.core.limits import DEFAULT_NEIGHBOURHOOD_TRIES
from dtasm_opt.solvers.exact.lagrangian import StageDual
from dtasm_opt.solvers.exact.restricted_mip import place_loose

# Neighbourhoods tried at most per call (a work limit): two rounds of the 28 pairs at H = 8.
# On bench_exact's (200, 8) states no better plan came after the 52nd (docs/design.md §9).
NEIGHBOURHOOD_TRIES = DEFAULT_NEIGHBOURHOOD_TRIES


def server_pair_search(
    dual: StageDual, chosen: np.ndarray, goal: float, tries: int = NEIGHBOURHOOD_TRIES
) -> tuple[np.ndarray, int]:
    """The best plan found from ``chosen`` (a mask over the problem's pairs serving ``dual``'s
    users once each) by re-placing two ESs' users at a time, and the neighbourhoods tried;
    it stops at a plan of value ``goal`` or less."""
    problem, p = dual.problem, dual.problem.pairs
    home = np.full(problem.n_users, -1)
    stays = dual.pair_ids[dual.cost == 0.0]  # the pairs that cost nothing: staying
    home[p.user[stays]] = p.server[stays]
    subsets = list(itertools.combinations(range(problem.n_servers), min(2, problem.n_servers)))
    value, spent, since = dual.value(chosen), 0, 0
    while since < len(subsets) and spent < tries and value > goal:
        servers = np.asarray(subsets[spent % len(subsets)])
        at = np.full(problem.n_users, -1)
        at[p.user[chosen]] = p.server[chosen]
        loose = np.isin(at, servers) | np.isin(home, servers)
        plan = place_loose(dual, chosen[dual.pair_ids], loose, goal=goal)
        spent, since = spent + 1, since + 1
        if plan is not None and dual.value(plan) < value:
            chosen, value, since = plan, dual.value(plan), 0
    return chosen, spent
