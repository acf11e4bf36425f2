"""A plan for an integral stage from its knapsacks' picks: the users they place exactly once
stay there, the rest are placed by a small exact search (relax-and-fix around the
Lagrangian solution).

At good multipliers the tie-break's knapsacks take almost every user exactly once: at
(200, 8), 4-10 users are left out or taken twice. Repairing those greedily fails on later
states (every ES is full: on u200-h8-s1-t5 no repair succeeded in 345 rounds), and a local
search from stage 1's plan stalls far above the optimum (109 migrations to 23, optimum 10).
Here the users the knapsacks did not settle, plus the ``free`` users whose picks are most
marginal (value closest to their ES's break ratio times weight: the picks a small change of
multipliers would flip), are placed by HiGHS on what the others leave of each ES; everyone
else keeps their pick. Each try is a small problem (15-30 users at (200, 8)): first a
depth-first search in compiled code, exact where it finishes within ``SEARCH_NODES`` nodes
and stopping at the first plan that the caller's bound proves (``goal``); where it does not
finish, a MIP for HiGHS with a node limit. Both limits are in work, so the same plan on every
run. HiGHS spends 5-600 ms on one of these; the search settled 13 of 42 tries on later
states at (200, 8) in 0.2-7 ms and gives up on the others after about 6 ms (docs/design.md
§9). A plan is returned only when it truly fits (fsum) and serves exactly the stage's
users. The engine makes one try with 10 free users after the coarse ascent (and one
more where column generation raises the bound): on bench_tiebreak's (200, 8) states that
try found the optimum on 4 of the 6 states HiGHS's stage 2 had to settle (tie-breaks of
0.05-0.6 s, where the engine with HiGHS took 0.1-16.5 s). Where those leave the tie-break
unproven, the engine tries 20 and 40 free users before HiGHS's stage 2: 0.1-2.7 s a try,
which on 70 rollout states at (200, 8) settled six tie-breaks that HiGHS's stage 2 had
taken 0.5-56 s over (docs/design.md §9).
"""

from __future__ import annotations

import highspy
import numba
import numpy as np

from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.highs_runtime import quiet_highs
from dtasm_opt.solvers.exact.lagrangian import StageDual, assignment_lp
from dtasm_opt.solvers.exact.regret_plan import regret_plan

# The free users beyond those the knapsacks left unsettled, and the MIP's node limit.
FREE_USERS = 10
RESTRICTED_NODES = 200
# The depth-first search's node limit before HiGHS gets the restricted problem (a work limit).
SEARCH_NODES = 200_000


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
    dual: StageDual,
    lam: np.ndarray,
    free: int,
    node_limit: int = RESTRICTED_NODES,
    picked: np.ndarray | None = None,
    goal: float = -np.inf,
) -> np.ndarray | None:
    """A plan (mask over the problem's pairs) keeping the knapsacks' single picks at ``lam``
    but for the ``free`` most marginal, or None when HiGHS finds none within its nodes.
    ``picked``: the picks to start from (a mask over ``dual.pair_ids``) where the caller has
    them, from ``dual`` or from the same stage on another grid; by default ``dual``'s.
    ``goal``: a plan's value that the caller's bound proves optimal; the search stops at the
    first plan that reaches it."""
    if picked is None:
        _, picked = dual.evaluate(lam)
    loose = dual.rows & (dual.taken(picked) != 1)
    loose[marginal_order(dual, lam, picked)[:free]] = True
    return place_loose(dual, picked, loose, node_limit, goal)


def place_loose(
    dual: StageDual,
    picked: np.ndarray,
    loose: np.ndarray,
    node_limit: int = RESTRICTED_NODES,
    goal: float = -np.inf,
) -> np.ndarray | None:
    """A plan (mask over the problem's pairs) in which every user with a relaxed row but the
    ``loose`` ones (a mask over the users) keeps its pick in ``picked`` (a mask over
    ``dual.pair_ids``, each such user picked exactly once) and the loose ones are placed on
    what the others leave, at least cost: the depth-first search, HiGHS within ``node_limit``
    nodes where it does not finish. None where neither places them. ``goal``: as in
    :func:`restricted_plan`."""
    problem, p = dual.problem, dual.problem.pairs
    user, server = p.user[dual.pair_ids], p.server[dual.pair_ids]
    weight = p.required_hz[dual.pair_ids]
    loose = loose & dual.rows
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
    chosen = np.zeros(p.n_pairs, dtype=bool)  # the kept and forced pairs, then the free users'
    chosen[dual.pair_ids[kept]] = True
    chosen[list(dual.forced)] = True
    stop_at = goal - dual.value(chosen)  # what the free users may cost at most
    status, x = _search(
        dual.cost[cols], user[cols], server[cols], weight[cols], users, room, stop_at
    )
    if status == "limit":  # not settled within SEARCH_NODES: HiGHS
        _, x = _solve(
            dual.cost[cols], user[cols], server[cols], weight[cols], users, room, node_limit
        )
    if x is None:
        return None
    chosen[dual.pair_ids[cols[x]]] = True
    served = np.bincount(p.user[chosen], minlength=problem.n_users)
    if not problem.fits(chosen).all() or np.any(served[dual.rows] != 1):
        return None
    return chosen


def serve_everyone(
    problem: StepProblem, node_limit: int, mip_nodes: int = 0
) -> tuple[np.ndarray | None, str]:
    """A plan (mask over the pairs) placing every user with an admissible pair, and how it
    was found: "search", the depth-first search below within ``node_limit`` nodes, each user
    at home where it can be (at (200, 8) it finds one without backtracking or not at all: 31
    of 71 rollout states, 0.2-0.4 ms each); "regret", where the search stops at its limit,
    the regret heuristic (:mod:`.regret_plan`, which served everyone on the other 26 of those
    states that allow it, about 0.35 ms each); "mip", where both miss, HiGHS on "everyone
    served, fewest migrations" within ``mip_nodes`` nodes, stopped at its first plan (0: not
    run). (None, "overloaded") where the search or HiGHS proves that there is none (what
    everyone needs at least is more than all ESs hold, or no order fits, or the MIP is
    infeasible), (None, "missed") where none of them decides (docs/design.md §9)."""
    p = problem.pairs
    if p.n_pairs == 0:
        return np.zeros(0, dtype=bool), "search"
    status, x = _search(
        p.migrates.astype(np.float64), p.user, p.server, p.required_hz, np.unique(p.user),
        problem.model_capacity_hz, np.inf, node_limit,
    )  # fmt: skip
    if status == "infeasible":
        return None, "overloaded"
    if status == "optimal" and x is not None and problem.fits(x).all():
        return x, "search"
    x = regret_plan(problem)
    if x is not None:
        return x, "regret"
    if mip_nodes > 0:
        status, x = _first_plan(problem, mip_nodes)
        if status == "infeasible":
            return None, "overloaded"
        if x is not None and problem.fits(x).all():
            return x, "mip"
    return None, "missed"


def _first_plan(problem: StepProblem, node_limit: int) -> tuple[str, np.ndarray | None]:
    """HiGHS on every user with a pair placed, migrations as the cost (its first plan is a
    fair start for the tie-break), stopped at its first plan: :func:`_solve`'s status and
    plan. Where the search and the regret heuristic miss at (200, 8), HiGHS settles most of
    these at its root (a plan in 0.2-0.4 s, or infeasible in 12 ms); one state took 2,525
    nodes (25 s)."""
    p = problem.pairs
    return _solve(
        p.migrates.astype(np.float64), p.user, p.server, p.required_hz, np.unique(p.user),
        problem.model_capacity_hz, node_limit, first=True,
    )  # fmt: skip


def _solve(
    cost, user, server, weight, users, room, node_limit, first: bool = False
) -> tuple[str, np.ndarray | None]:
    """min cost.x, one pair per user in ``users``, each ES within ``room``, within
    ``node_limit`` nodes; with ``first``, stopped at its first plan (the question is whether
    one exists). ("found", the plan), ("infeasible", None) where HiGHS proves there is none,
    or ("limit", None)."""
    lp = assignment_lp(cost, user, server, weight, users, room, equality=True)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * cost.size
    h = quiet_highs()
    stop = ("mip_max_improving_sols", 1) if first else ("mip_rel_gap", 0.0)
    for key, val in (("threads", 1), ("random_seed", 0), stop, ("mip_max_nodes", int(node_limit))):
        h.setOptionValue(key, val)
    h.passModel(lp)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        return "infeasible", None
    if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
        return "limit", None
    return "found", np.asarray(h.getSolution().col_value) > 0.5


def _search(
    cost, user, server, weight, users, room, stop_at: float = -np.inf, node_limit: int | None = None
) -> tuple[str, np.ndarray | None]:
    """The restricted problem by depth-first search, where every cost is 0 or 1 (the
    tie-break's: a user stays, or migrates): ("optimal", its plan), ("infeasible", None), or
    ("limit", None) where it does not finish within ``node_limit`` nodes (by default
    ``SEARCH_NODES``); "optimal" also for the first plan that costs at most ``stop_at`` (the
    caller needs no better). HiGHS spends 5-600 ms on these 15-30 users. The bound counts,
    per ES, the users still to place whose free option is there and who cannot all fit in
    what is left of it (the most that fit: the lightest first), plus the users with no free
    option; at (200, 8) the optimum is 5-20 migrations where the cheapest option of each user
    sums to 0 or 1."""
    if not np.all((cost == 0.0) | (cost == 1.0)):
        return "limit", None
    row = np.searchsorted(users, user)  # users is sorted (np.flatnonzero)
    order = np.lexsort((weight, cost, row))  # by user, then cheapest and lightest option
    start = np.searchsorted(row[order], np.arange(users.size + 1))
    count = np.diff(start)
    if np.any(count == 0):
        return "infeasible", None
    if np.any(np.bincount(row[cost == 0.0], minlength=users.size) > 1):
        return "limit", None  # the bound below takes one free option per user (its own ES)
    first = order[start[:-1]]  # each user's cheapest option, the lightest among equals
    free = cost[first] == 0.0
    visit = np.lexsort((~free, count))  # fewest options first, then those that must move
    home = np.where(free, server[first], -1)[visit]
    # per ES, the users (by visit position) whose free option is there, lightest first
    by_es = np.lexsort((weight[first][visit], home))
    by_es = by_es[home[by_es] >= 0]
    es_start = np.searchsorted(home[by_es], np.arange(room.size + 1))
    lightest = np.full(users.size, np.inf)
    np.minimum.at(lightest, row, weight)
    # what users i.. need at least, in all (more than is left of every ES prunes), and how
    # many of them have no free option
    need = np.concatenate((np.cumsum(lightest[visit][::-1])[::-1], [0.0]))
    must_move = np.concatenate((np.cumsum((home < 0)[::-1])[::-1], [0])).astype(np.int64)
    status, pick = _depth_first(
        start[visit], count[visit], must_move, weight[first][visit], by_es, es_start, need,
        order, cost, server, weight, room.astype(np.float64),
        SEARCH_NODES if node_limit is None else node_limit, stop_at,
    )  # fmt: skip
    if status != 1:
        return ("infeasible" if status == 2 else "limit"), None
    x = np.zeros(cost.size, dtype=bool)
    x[pick] = True
    return "optimal", x


@numba.njit(cache=True)
def _bound_from(i, must_move, home_weight, by_es, es_start, room, used):  # pragma: no cover
    """The fewest migrations among users i.. (in visit order) that what is left allows."""
    moves = must_move[i]
    for h in range(room.shape[0]):
        left = room[h] - used[h]
        for q in range(es_start[h], es_start[h + 1]):
            j = by_es[q]
            if j < i:
                continue
            if home_weight[j] <= left:
                left -= home_weight[j]
            else:
                moves += 1
    return moves


@numba.njit(cache=True)
def _depth_first(  # pragma: no cover - compiled
    first, count, must_move, home_weight, by_es, es_start, need, order, cost, server, weight,
    room, node_limit, stop_at,
):  # fmt: skip
    """(status, the chosen column per user) of min cost: status 1 where that is proven, 2
    where no plan fits, 0 at the node limit. Users in ``first``/``count``'s order, their
    options ``order[first[i]:first[i] + count[i]]`` cheapest first."""
    n = first.shape[0]
    used = np.zeros(room.shape[0])
    total = room.sum()
    placed = 0.0
    at = np.full(n, -1)
    best_pick = np.full(n, -1)
    best = np.inf
    spent = 0.0
    i, nodes = 0, 0
    while i >= 0:
        if i == n:  # a full plan, better than the best (the bound checked that)
            best = spent
            for j in range(n):
                best_pick[j] = order[first[j] + at[j]]
            if best <= stop_at + 0.5:
                return 1, best_pick
            i -= 1
            k = order[first[i] + at[i]]
            used[server[k]] -= weight[k]
            placed -= weight[k]
            spent -= cost[k]
            continue
        nodes += 1
        if nodes > node_limit:
            return 0, best_pick
        k = -1
        a = at[i] + 1
        while a < count[i]:
            k = order[first[i] + a]
            if (
                used[server[k]] + weight[k] <= room[server[k]]
                and placed + weight[k] + need[i + 1] <= total
            ):
                used[server[k]] += weight[k]
                if (
                    spent
                    + cost[k]
                    + _bound_from(i + 1, must_move, home_weight, by_es, es_start, room, used)
                    < best - 0.5
                ):
                    break
                used[server[k]] -= weight[k]
            a += 1
        if a < count[i]:
            at[i] = a
            placed += weight[k]
            spent += cost[k]
            i += 1
            if i < n:
                at[i] = -1
        else:
            at[i] = -1
            i -= 1
            if i >= 0:
                k = order[first[i] + at[i]]
                used[server[k]] -= weight[k]
                placed -= weight[k]
                spent -= cost[k]
    return (1 if best < np.inf else 2), best_pick
