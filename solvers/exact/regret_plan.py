"""A plan that serves every user with an admissible pair, by regret (Martello and Toth's MTHG
heuristic for the generalized assignment problem).

Where such a plan exists, stage 1 needs no solver at all: it is optimal, and the load
certificate proves it (:mod:`.engine`). The engine first asks the restricted problems'
depth-first search (:func:`.restricted_mip.serve_everyone`), which keeps users at home and
so gives the tie-break a start with few migrations; at (200, 8) that search finds a plan on
31 of 71 rollout states, and on 26 others a plan exists (HiGHS's load stage, 12-16 ms,
finds one) but the search stops at its 1,000 nodes. This heuristic serves everyone on all
of those, and on bench_tiebreak's seed 1 step 20, in about 0.35 ms each (docs/design.md §9).

Each round looks, for every user still to place, at the ESs with room for it, ranked by the
share of the ES's capacity it would take; the user whose best ES beats its second best by
the most (the regret: a user with one ES left has an infinite one) goes to its best ES.
Deterministic: ties go to the lowest user index and the first pair. Placing users at home
first (a migration counted before the share) failed on every one of those states.
"""

from __future__ import annotations

import numba
import numpy as np

from dtasm_opt.models.step_problem import StepProblem


def regret_plan(problem: StepProblem) -> np.ndarray | None:
    """A plan (mask over the pairs) placing every user with an admissible pair within the
    model's capacity, or None where the heuristic gets stuck (which proves nothing)."""
    p = problem.pairs
    if p.n_pairs == 0:
        return np.zeros(0, dtype=bool)
    by_user = np.argsort(p.user, kind="stable")
    start = np.searchsorted(p.user[by_user], np.arange(problem.n_users + 1))
    capacity = problem.model_capacity_hz.astype(np.float64)
    pick = _regret(
        start.astype(np.int64), by_user.astype(np.int64), p.server.astype(np.int64),
        p.required_hz.astype(np.float64), capacity,
    )  # fmt: skip
    if pick is None:
        return None
    x = np.zeros(p.n_pairs, dtype=bool)
    x[pick] = True
    return x if problem.fits(x).all() else None


@numba.njit(cache=True)
def _regret(start, by_user, server, weight, capacity):  # pragma: no cover - compiled
    """The pair of every user with pairs (``by_user[start[u]:start[u + 1]]``), or None."""
    n_users = start.shape[0] - 1
    left = capacity.copy()
    todo = np.zeros(n_users, np.bool_)
    for u in range(n_users):
        todo[u] = start[u + 1] > start[u]
    remaining = int(todo.sum())
    picks = np.empty(remaining, np.int64)
    placed = 0
    while placed < remaining:
        best_user, best_pair, best_regret = -1, -1, -np.inf
        for u in range(n_users):
            if not todo[u]:
                continue
            first, second, pair = np.inf, np.inf, -1
            for j in range(start[u], start[u + 1]):
                k = by_user[j]
                h = server[k]
                if weight[k] > left[h]:
                    continue
                share = weight[k] / capacity[h]
                if share < first:
                    first, second, pair = share, first, k
                elif share < second:
                    second = share
            if pair < 0:
                return None  # no ES has room for u any more
            if second - first > best_regret:
                best_user, best_pair, best_regret = u, pair, second - first
        picks[placed] = best_pair
        placed += 1
        left[server[best_pair]] -= weight[best_pair]
        todo[best_user] = False
    return picks
