"""Plans for an overloaded load stage from its Lagrangian multipliers: the ESs' knapsacks one
after another, then each ES refilled from the cloud.

At multipliers near the best, each ES's knapsack (profit: a user's load plus its multiplier,
which is <= 0) takes the users it should serve, and most users are taken by one ES only;
what is left to decide is who of the contested goes where. Here the ESs take their knapsacks
in turn, each from the users no earlier ES took, and then every ES is refilled (the best load
from its own users and the cloud's that it admits) until none improves. The knapsacks are the
whole-hertz branch and bound's (:func:`.grid_knapsack.good_subset`): exact where it finishes,
as it did on every ES up to (1000, 16) measured, and otherwise the best subset it found, not
the DP on a coarser grid that the bound needs (0.7 s an ES at (5000, 32), where 100 orders
took 650 s that way and take 3.4 s now; docs/design.md §9). Each
order of the ESs gives a plan in a few ms at (280, 8); ``tries`` orders, drawn from a
Generator seeded by ``seed``, give the same plans on every run. On the ten u280-h8-t20
states 100 orders (0.3-0.5 s) beat HiGHS's plan after 2,000 nodes (10-60 s) on 8 and left
the others 1-106 KB worse (docs/design.md §9).

Weights are rounded up to whole hertz and capacities down, so a plan whose knapsacks fit
fits the real numbers; ``problem.fits`` checks each ES all the same (fsum).
"""

from __future__ import annotations

import math

import numpy as np

from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.grid_knapsack import good_subset

# Orders of the ESs tried per call (a work limit).
LOAD_PLAN_TRIES = 100
# A user whose multiplier cancels its load still beats leaving room empty: its profit keeps
# this fraction of its load (relative to the heaviest), the knapsack's tie-break.
TIE_SHARE = 1e-3


def best_plan(
    problem: StepProblem, multipliers: np.ndarray, tries: int = LOAD_PLAN_TRIES, seed: int = 0
) -> np.ndarray | None:
    """The plan (mask over the pairs) of least cloud load among ``tries`` orders of the ESs,
    or None without pairs; ``multipliers`` (U,) are the load stage's (<= 0, bytes)."""
    p = problem.pairs
    if p.n_pairs == 0 or tries < 1:
        return None
    units = np.ceil(p.required_hz).astype(np.int64)
    room = np.floor(problem.model_capacity_hz).astype(np.int64)
    load = problem.pair_load_bytes
    profit = np.maximum(load + multipliers[p.user], 0.0) + TIE_SHARE * load / max(load.max(), 1.0)
    per_es = [np.flatnonzero(p.server == h) for h in range(problem.n_servers)]
    rng = np.random.default_rng(seed)
    best, best_load = None, np.inf
    for _ in range(tries):
        chosen = np.zeros(p.n_pairs, dtype=bool)
        taken = np.zeros(problem.n_users, dtype=bool)
        for h in rng.permutation(problem.n_servers):
            ids = per_es[h][~taken[p.user[per_es[h]]]]
            pick = _pick(problem, ids, units, profit, room[h])
            chosen[pick] = True
            taken[p.user[pick]] = True
        chosen = refill(problem, chosen, units, room, per_es)
        value = problem.cloud_load_bytes(chosen)
        if value < best_load:
            best, best_load = chosen, value
    return best


def refill(
    problem: StepProblem,
    chosen: np.ndarray,
    units: np.ndarray,
    room: np.ndarray,
    per_es: list[np.ndarray],
) -> np.ndarray:
    """``chosen`` with each ES's users replaced by the best load among them and the cloud's
    users it admits (a knapsack, :func:`_pick`), ES after ES, until a sweep changes nothing."""
    p, load = problem.pairs, problem.pair_load_bytes
    chosen = chosen.copy()
    improved = True
    while improved:
        improved = False
        for h in range(problem.n_servers):
            served = problem.served(chosen)
            mine = chosen[per_es[h]]
            ids = per_es[h][mine | ~served[p.user[per_es[h]]]]
            pick = _pick(problem, ids, units, load, room[h])
            if load[pick].sum() > load[per_es[h][mine]].sum() * (1 + 1e-12):
                chosen[per_es[h]] = False
                chosen[pick] = True
                improved = True
    return chosen


def _pick(
    problem: StepProblem, ids: np.ndarray, units: np.ndarray, values: np.ndarray, room: int
) -> np.ndarray:
    """The pairs ``ids`` (of one ES) of most value within ``room`` units that the branch and
    bound finds within its node limit; none where that subset does not truly fit (fsum
    against the capacity)."""
    if ids.size == 0:
        return ids
    mask = good_subset(units[ids], values[ids], int(room))
    pick = ids[mask]
    # that ES's fsum test, as problem.fits makes it (without checking every other ES)
    h = problem.pairs.server[ids[0]]
    return pick if math.fsum(problem.pairs.required_hz[pick]) <= problem.capacity_hz[h] else ids[:0]
