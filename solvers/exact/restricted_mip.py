"""A plan for an integral stage from its knapsacks' picks: the users they place exactly once
stay there, HiGHS places the rest (relax-and-fix around the Lagrangian solution).

At good multipliers the tie-break's knapsacks take almost every user exactly once: at
(200, 8), 4-10 users are left out or taken twice. Repairing those greedily fails on later
states (every ES is full: on u200-h8-s1-t5 no repair succeeded in 345 rounds), and a local
search from stage 1's plan stalls far above the optimum (109 migrations to 23, optimum 10).
Here the users the knapsacks did not settle, plus the ``free`` users whose picks are most
marginal (value closest to their ES's break ratio times weight: the picks a small change of
multipliers would flip), are placed by HiGHS on what the others leave of each ES; everyone
else keeps their pick. Each try is a small MIP with a node limit (a work limit, so the same
plan on every run). A plan is returned only when it truly fits (fsum) and serves exactly the
stage's users. The engine makes one try with 10 free users after the coarse ascent (and one
more where column generation raises the bound): on bench_tiebreak's (200, 8) states that
try found the optimum on 4 of the 6 states HiGHS's stage 2 had to settle (tie-breaks of
0.05-0.6 s, where the engine with HiGHS took 0.1-16.5 s). Tries with 20 and 40 free users
found more, but cost 1-5 s each on later states of a rollout where they found nothing HiGHS
would not (docs/design.md §9).
"""

from __future__ import annotations

import highspy
import numpy as np

from dtasm_opt.solvers.exact.lagrangian import StageDual, assignment_lp

# The free users beyond those the knapsacks left unsettled, and the MIP's node limit.
FREE_USERS = 10
RESTRICTED_NODES = 200


def marginal_order(dual: StageDual, lam: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """The users each knapsack took exactly once, most marginal pick first."""
    p = dual.problem.pairs
    user, server = p.user[dual.pair_ids], p.server[dual.pair_ids]
    weight = p.required_hz[dual.pair_ids]
    values = lam[user] - dual.cost
    ratio = np.zeros(dual.problem.n_servers)
    for h in range(dual.problem.n_servers):  # the break ratio: the least ratio picked
        on = picked & (server == h) & (weight > 0)
        ratio[h] = (values[on] / weight[on]).min() if on.any() else 0.0
    margin = np.abs(values - ratio[server] * weight) / np.maximum(np.abs(values), 1e-9)
    least = np.full(dual.problem.n_users, np.inf)
    np.minimum.at(least, user[picked], margin[picked])
    once = np.flatnonzero(dual.rows & (dual.taken(picked) == 1))
    return once[np.argsort(least[once], kind="stable")]


def restricted_plan(
    dual: StageDual, lam: np.ndarray, free: int, node_limit: int = RESTRICTED_NODES
) -> np.ndarray | None:
    """A plan (mask over the problem's pairs) keeping the knapsacks' single picks at ``lam``
    but for the ``free`` most marginal, or None when HiGHS finds none within its nodes."""
    problem, p = dual.problem, dual.problem.pairs
    _, picked = dual.evaluate(lam)
    user, server = p.user[dual.pair_ids], p.server[dual.pair_ids]
    weight = p.required_hz[dual.pair_ids]
    loose = dual.rows & (dual.taken(picked) != 1)
    loose[marginal_order(dual, lam, picked)[:free]] = True
    kept = picked & ~loose[user]
    room = problem.model_capacity_hz - np.bincount(
        server[kept], weights=weight[kept], minlength=problem.n_servers
    )
    for k in dual.forced:
        room[p.server[k]] -= p.required_hz[k]
    cols = np.flatnonzero(loose[user])
    users = np.flatnonzero(loose)
    if users.size == 0 or np.any(room < 0):
        return None
    x = _solve(dual.cost[cols], user[cols], server[cols], weight[cols], users, room, node_limit)
    if x is None:
        return None
    chosen = np.zeros(p.n_pairs, dtype=bool)
    chosen[dual.pair_ids[kept]] = True
    chosen[dual.pair_ids[cols[x]]] = True
    chosen[list(dual.forced)] = True
    served = np.bincount(p.user[chosen], minlength=problem.n_users)
    if not problem.fits(chosen).all() or np.any(served[dual.rows] != 1):
        return None
    return chosen


def _solve(cost, user, server, weight, users, room, node_limit) -> np.ndarray | None:
    """min cost.x, one pair per user in ``users``, each ES within ``room``."""
    lp = assignment_lp(cost, user, server, weight, users, room, equality=True)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * cost.size
    h = highspy.Highs()
    for key, val in (
        ("output_flag", False),
        ("threads", 1),
        ("random_seed", 0),
        ("mip_rel_gap", 0.0),
        ("mip_max_nodes", int(node_limit)),
    ):
        h.setOptionValue(key, val)
    h.passModel(lp)
    h.run()
    if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
        return None
    return np.asarray(h.getSolution().col_value) > 0.5
