"""The Lagrangian bound of one stage of the per-step problem: one knapsack per ES.

Both stages of :mod:`dtasm_opt.models.step_problem` read

    min  const + sum_k cost[k] x[k]
    s.t. sum_h x[u, h] (= or <=) 1 for every user u with a row,  sum_u Prc[u, h] x[u, h] <= P[h],

stage 1 with cost[k] = -load[u] and "<= 1" (const = the total load: the objective is the
cloud load), the migrations stage with cost[k] = 1 if the pair moves the user, "= 1" for
stage 1's served users and const = the users of an ES that stage 1 leaves in the cloud.
Relaxing the user rows with multipliers lam (free for "=", <= 0 for "<=") splits the rest
into one knapsack per ES:

    L(lam) = const + sum_u lam[u] - sum_h max{ sum_k (lam[u] - cost[k]) x[k] : x fits ES h },

a lower bound on the stage's optimum for every lam (the Dantzig-Wolfe bound at the best lam).
Each knapsack is solved as an upper bound on a 1 MHz grid (:mod:`.grid_knapsack`), so every
L(lam) computed here is a valid lower bound; :func:`ascend_coarse_first` climbs first on a
coarser grid, a looser relaxation whose rounds cost less. The migrations stage has integer
values, so ceil(L) proves an incumbent optimal as soon as ceil(L) reaches it: on later states at
U = 200 the bound reaches the optimum where HiGHS's LP bound is 3-4 migrations below it.

The multipliers are the certificate: :mod:`dtasm_opt.core.certificate` recomputes L from
them with its own knapsacks (docs/design.md §3, the step's exact optimum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import highspy
import numba
import numpy as np

from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.grid_knapsack import (
    GRID_HZ,
    WHOLE_HZ,
    best_subset,
    best_value,
    capacity_units,
    floor_units,
)
from dtasm_opt.solvers.exact.highs_runtime import quiet_highs

# A bound this close above an integer still proves that integer (float sums of multipliers
# carry an error of order 1e-13; the certificate check allows the same).
INTEGER_SLACK = 1e-6
# An integral stage's Polyak steps aim this far above the floor of the best bound: aiming at
# the next integer (1.0) stalls just below it (9.98 where 10.001 proves the optimum of 11),
# 1.5 crosses it on later states at U = 200.
AIM = 1.5
# Each step moves along the subgradient plus this share of the previous direction (a
# deflected subgradient) and halves after PATIENCE steps without a better bound. On five later
# states at U = 200, (0.5, 15) needed 381 knapsack rounds in all, (0, 30) 474.
DEFLECT = 0.5
PATIENCE = 15
# The two-grid ascent (:func:`ascend_coarse_first`) climbs first on this grid: a round of 8
# knapsacks costs a quarter of the 1 MHz grid's, and any bound it gives is valid (a coarser
# grid is a looser relaxation: every subset that fits the fine grid fits the coarse one). On
# bench_tiebreak's states it kept the 1 MHz ascent's proofs but for one found by fixing, and
# added a certificate (docs/design.md §9); the coarse bound falls short of the fine one by up
# to 0.2 migration at the same multipliers, hence the switch.
COARSE_GRID_HZ = 4e6
# The coarse phase's rounds (each a quarter of a fine one), on top of the fine phase's; it ends
# earlier at its first stall (the step halving): past that the coarse grid's looseness, not
# the multipliers, is what holds the bound back.
COARSE_ROUNDS = 60
# An integral stage goes on to the fine grid only while the bound there, at the coarse phase's
# multipliers, is at most this many integers below the incumbent. On bench_tiebreak's 47
# states at (100, 4), (120, 4) and (200, 8) the fine phase raised ceil(bound) by at most 2
# (from 3 short to 1 short, where fixing can still prove), never from 4 or more short to a
# proof; at U = 280, 10-20 short, its 200 rounds took 25 s a step and proved nothing.
FINE_REACH = 3
# The ascent gives up once the step has halved below this (about 7 halvings, some 100 rounds
# without a better bound): an incumbent the bound cannot reach is then likely not optimal,
# and the engine's next HiGHS run looks for a better one.
MIN_STEP = 1e-2


@dataclass(frozen=True, eq=False)
class StageDual:
    """The numbers of one stage's Lagrangian: which pairs, their costs, the row type."""

    problem: StepProblem
    pair_ids: np.ndarray  # (K',) the stage's pairs (stage 2: only the served users')
    cost: np.ndarray  # (K',) cost[k] of each of those pairs
    const: float
    rows: np.ndarray  # (U,) bool: the user has a relaxed row
    equality: bool  # rows are "= 1" (else "<= 1": multipliers <= 0)
    integral: bool  # every plan's objective is an integer (ceil proves)
    grid_hz: float = GRID_HZ
    # Pairs forced into every plan (a node of :mod:`.lagrangian_tree`): their users have no
    # row and no pair left here, their costs are in ``const``, their grid units leave their ES.
    forced: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        p = self.problem.pairs
        server = p.server[self.pair_ids]
        per_es = [np.flatnonzero(server == h) for h in range(self.problem.n_servers)]
        units = floor_units(p.required_hz[self.pair_ids], self.grid_hz)
        caps = [capacity_units(float(c), self.grid_hz) for c in self.problem.capacity_hz]
        if self.forced:
            forced = np.asarray(self.forced)
            used = np.bincount(
                p.server[forced],
                weights=floor_units(p.required_hz[forced], self.grid_hz),
                minlength=self.problem.n_servers,
            )
            caps = [c - int(u) for c, u in zip(caps, used, strict=True)]
        object.__setattr__(self, "_per_es", per_es)
        object.__setattr__(self, "_units", units)
        object.__setattr__(self, "_caps", caps)
        object.__setattr__(self, "_user", p.user[self.pair_ids])

    @property
    def infeasible(self) -> bool:
        """The forced pairs alone overfill some ES's grid capacity (so, its real one)."""
        return min(self._caps) < 0  # type: ignore[attr-defined]

    def evaluate(self, lam: np.ndarray) -> tuple[float, np.ndarray]:
        """(L(lam), the knapsacks' picks as a mask over ``pair_ids``), lam of shape (U,)."""
        bound, picked, _ = self._solve(lam, penalties=False)
        return bound, picked

    def penalties(self, lam: np.ndarray) -> tuple[float, np.ndarray]:
        """(L(lam), a lower bound on how much L rises when each pair is forced in): forcing
        pair k onto ES h leaves at most value[k] + table_h[cap - units[k]] to that knapsack
        (taking it away from the user's other ESs only lowers theirs)."""
        bound, _, penalty = self._solve(lam, penalties=True)
        return bound, penalty

    def evaluate_with_penalties(self, lam: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(L(lam), the knapsacks' picks, the forced-in penalties) in one round."""
        return self._solve(lam, penalties=True)

    def _solve(self, lam: np.ndarray, penalties: bool) -> tuple[float, np.ndarray, np.ndarray]:
        picked = np.zeros(self.pair_ids.size, dtype=bool)
        penalty = np.zeros(self.pair_ids.size)
        best = 0.0
        for h, ks in enumerate(self._per_es):  # type: ignore[attr-defined]
            if ks.size == 0:
                continue
            units = self._units[ks]  # type: ignore[attr-defined]
            values = lam[self._user[ks]] - self.cost[ks]  # type: ignore[attr-defined]
            cap = self._caps[h]  # type: ignore[attr-defined]
            if penalties:  # the DP's table bounds each forced pair's knapsack
                fit = units <= cap
                # only cap - units of the pairs that fit is read: the DP fills no lower
                lowest = cap - int(units[fit].max()) if fit.any() else cap
                value, chosen, table = best_subset(units, values, cap, lowest)
                rest = np.where(fit, table[np.clip(cap - units, 0, cap)], -np.inf)
                penalty[ks] = value - np.minimum(value, values + rest)
            else:  # the value alone: branch and bound first, far faster here
                value, chosen = best_value(units, values, cap)
            best += value
            picked[ks[chosen]] = True
        return self.const + float(lam[self.rows].sum()) - best, picked, penalty

    def taken(self, picked: np.ndarray) -> np.ndarray:
        """(U,) how many knapsacks took each user."""
        return np.bincount(self._user[picked], minlength=self.problem.n_users).astype(float)  # type: ignore[attr-defined]

    def value(self, chosen: np.ndarray) -> float:
        """The stage's objective of a plan, ``chosen`` a mask over all the problem's pairs."""
        mask = chosen[self.pair_ids]
        return self.const + float(self.cost[mask].sum())

    def repair(self, picked: np.ndarray) -> np.ndarray | None:
        """A plan (mask over all pairs) near the knapsacks' picks, or None: each ES keeps its
        picks while they truly fit (fsum), a user picked twice keeps its cheapest pair, and
        the users left over go, fewest options first, to their cheapest pair with room.
        None when an equality row's user finds no room. The loops are compiled (a repair
        per round of the ascent: 0.2 ms in Python at (200, 8), half of a short tie-break)."""
        problem, p = self.problem, self.problem.pairs
        room = problem.model_capacity_hz.astype(np.float64)
        owner = np.full(problem.n_users, -1, dtype=np.int64)
        for k in self.forced:
            owner[p.user[k]] = k
            room[p.server[k]] -= p.required_hz[k]
        ids = self.pair_ids[picked]
        # cheapest first, then lightest: the pair a user keeps when picked twice
        ids = ids[np.lexsort((p.required_hz[ids], self.cost[picked]))]
        options, start, by_user = self._options()
        placed = _place(
            ids.astype(np.int64), p.user, p.server, p.required_hz, room, owner, self.rows,
            options, start, by_user, self.equality,
        )  # fmt: skip
        if not placed:
            return None
        chosen = np.zeros(p.n_pairs, dtype=bool)
        chosen[owner[owner >= 0]] = True
        return chosen if problem.fits(chosen).all() else None

    def _options(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(U,) each user's number of pairs, and its pairs cheapest first, then lightest
        (``by_user[start[u]:start[u + 1]]``): the same for every repair of this stage, so
        built once (a repair per round)."""
        cached = self.__dict__.get("_options_cache")
        if cached is None:
            user, p = self._user, self.problem.pairs  # type: ignore[attr-defined]
            options = np.bincount(user, minlength=self.problem.n_users)
            order = np.argsort(self.cost + p.required_hz[self.pair_ids] * 1e-12, kind="stable")
            order = order[np.argsort(user[order], kind="stable")]  # by user, in that order
            start = np.concatenate(([0], np.cumsum(options))).astype(np.int64)
            cached = (options.astype(np.int64), start, self.pair_ids[order].astype(np.int64))
            object.__setattr__(self, "_options_cache", cached)
        return cached

    def proves_each(self, bounds: np.ndarray, incumbent: float) -> np.ndarray:
        """:meth:`proves` elementwise: which of ``bounds`` show nothing beats ``incumbent``."""
        if not self.integral:
            return np.zeros(bounds.shape, dtype=bool)
        return np.ceil(bounds - INTEGER_SLACK) >= incumbent

    def proves(self, bound: float, incumbent: float) -> bool:
        """Whether ``bound`` shows that nothing beats ``incumbent`` (integral stages only)."""
        return self.integral and math.ceil(bound - INTEGER_SLACK) >= incumbent


def migrations_dual(
    problem: StepProblem, served: np.ndarray, grid_hz: float = GRID_HZ
) -> StageDual:
    """Stage 2 (fewest migrations) with the served users fixed to ``served`` (U,) bool, on
    the 1 MHz grid unless told otherwise (the engine's ascents: ``WHOLE_HZ``)."""
    pair_cost, cloud_cost = problem.second_stage_costs("migrations")
    ids = np.flatnonzero(served[problem.pairs.user])
    return StageDual(
        problem=problem,
        pair_ids=ids,
        cost=pair_cost[ids],
        const=float(cloud_cost[~served].sum()),
        rows=served.copy(),
        equality=True,
        integral=True,
        grid_hz=grid_hz,
    )


def load_dual(
    problem: StepProblem, grid_hz: float = WHOLE_HZ, cloud: np.ndarray | None = None
) -> StageDual:
    """Stage 1 (least cloud load, bytes), by default on the whole-hertz grid: its bound is the
    real weights' (branch-and-bound knapsacks; no penalties table). ``cloud``: users held in
    the cloud (no row, no pair: the plans whose cloud holds them, :mod:`.cloud_sets`)."""
    keep = np.ones(problem.n_pairs, dtype=bool)
    if cloud is not None:
        keep = ~np.isin(problem.pairs.user, cloud)
    rows = np.zeros(problem.n_users, dtype=bool)
    rows[problem.pairs.user[keep]] = True
    return StageDual(
        problem=problem,
        pair_ids=np.flatnonzero(keep),
        cost=-problem.pair_load_bytes[keep],
        const=problem.total_load_bytes,
        rows=rows,
        equality=False,
        integral=False,
        grid_hz=grid_hz,
    )


@dataclass(frozen=True)
class Ascent:
    """What the subgradient ascent reached."""

    bound: float
    multipliers: np.ndarray  # (U,) the multipliers of ``bound``
    iterations: int
    incumbent: float  # the best plan's objective (the start's, unless repair beat it)
    plan: np.ndarray  # (K,) mask of the best plan
    proven: bool  # the bound reaches the incumbent (integral stages: its ceiling does)


def lp_multipliers(dual: StageDual) -> np.ndarray:
    """The LP relaxation's row duals: the ascent's start (the LP bound, reached in ms). Its
    own small model, not the backends' (step_matrix): only the stage's pairs and rows, one
    dual per relaxed row, capacities in GHz, costs as the bound reads them."""
    problem, p = dual.problem, dual.problem.pairs
    users = np.flatnonzero(dual.rows)
    n = users.size
    lp = assignment_lp(
        dual.cost / _scale(dual),
        p.user[dual.pair_ids],
        p.server[dual.pair_ids],
        p.required_hz[dual.pair_ids],
        users,
        problem.capacity_hz,
        dual.equality,
    )
    h = quiet_highs()
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    h.run()
    lam = np.zeros(problem.n_users)
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        lam[users] = np.asarray(h.getSolution().row_dual)[:n] * _scale(dual)
    return _project(dual, lam)


def assignment_lp(
    cost: np.ndarray,
    user: np.ndarray,
    server: np.ndarray,
    weight_hz: np.ndarray,
    users: np.ndarray,
    capacity_hz: np.ndarray,
    equality: bool,
) -> highspy.HighsLp:
    """min cost.x over pairs (user[k], server[k]) in [0, 1]: one row per user of ``users``
    (sum = 1, or <= 1), then one row per ES (weights within capacity, both in GHz)."""
    row_of = np.full(int(user.max(initial=0)) + 1, -1)
    row_of[users] = np.arange(users.size)
    n, h_count, k = users.size, capacity_hz.size, cost.size
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = k, n + h_count
    lp.col_cost_ = np.asarray(cost, dtype=np.float64)
    lp.col_lower_, lp.col_upper_ = np.zeros(k), np.ones(k)
    lp.row_lower_ = np.concatenate(
        (np.ones(n) if equality else np.full(n, -np.inf), np.full(h_count, -np.inf))
    )
    lp.row_upper_ = np.concatenate((np.ones(n), capacity_hz / 1e9))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, 2 * k + 1, 2, dtype=np.int32)
    index = np.empty(2 * k, dtype=np.int32)
    index[0::2] = row_of[user]
    index[1::2] = n + server
    value = np.empty(2 * k)
    value[0::2] = 1.0
    value[1::2] = weight_hz / 1e9
    lp.a_matrix_.index_, lp.a_matrix_.value_ = index, value
    return lp


def _scale(dual: StageDual) -> float:
    # Stage 1's costs are bytes (about 1e6): the LP sees them in MB.
    return 1.0 if dual.integral else 1e6


def _project(dual: StageDual, lam: np.ndarray) -> np.ndarray:
    lam = np.where(dual.rows, lam, 0.0)
    return lam if dual.equality else np.minimum(lam, 0.0)


def ascend(
    dual: StageDual,
    start: np.ndarray,
    plan: np.ndarray,
    max_iterations: int,
    patience: int = PATIENCE,
    max_halvings: int | None = None,
    evaluated: tuple[float, np.ndarray] | None = None,
    incumbent: float | None = None,
) -> Ascent:
    """Subgradient ascent on L from multipliers ``start``, with Polyak steps along a deflected
    subgradient towards the best plan's objective (``plan``, a feasible mask over the
    problem's pairs, is the first; integral stages aim lower, see ``_target``). Every
    iteration repairs the knapsacks' picks into a plan and keeps it if it is better. After
    ``patience`` steps without a better bound it returns to the best multipliers and halves
    the step. Deterministic (a work limit, no clock). Stops once the bound proves the
    incumbent, or the step dies out. ``evaluated``: ``dual.evaluate(start)`` where the caller
    has it already (the first round then solves no knapsack). ``incumbent``: the value of
    ``plan`` where ``dual`` cannot compute it (a node of the tree search, whose forced pairs
    ``plan`` need not hold); a repaired plan then replaces ``plan`` only if it beats it."""
    lam = _project(dual, start)
    incumbent = dual.value(plan) if incumbent is None else incumbent
    best, best_lam, step, stall = -math.inf, lam, 1.0, 0
    iterations = halvings = 0
    direction = None
    while iterations < max_iterations:
        iterations += 1
        if iterations == 1 and evaluated is not None:
            bound, picked = evaluated
        else:
            bound, picked = dual.evaluate(lam)
        if bound > best:
            best, best_lam, stall = bound, lam, 0
        else:
            stall += 1
            if stall >= patience:
                step, stall, lam = step / 2.0, 0, best_lam
                halvings += 1
                if max_halvings is not None and halvings > max_halvings:
                    break
        repaired = dual.repair(picked)
        if repaired is not None and dual.value(repaired) < incumbent:
            plan, incumbent = repaired, dual.value(repaired)
        if _closed(dual, best, incumbent):
            break
        g = np.where(dual.rows, 1.0 - dual.taken(picked), 0.0)
        if not dual.equality:
            g[(lam >= 0.0) & (g > 0)] = 0.0  # the projection would undo these moves
        if direction is not None:
            g = g + DEFLECT * direction
        direction = g
        # Not g @ g: BLAS's dot adds in an order that depends on the CPU's kernel, so the
        # multipliers, and through ties the plans, would differ between machines.
        norm = math.fsum((g * g).tolist())  # correctly rounded: the same on every CPU
        if norm == 0.0 or step < MIN_STEP:
            break
        lam = _project(dual, lam + step * (_target(dual, best, incumbent) - bound) / norm * g)
    return Ascent(
        bound=best,
        multipliers=best_lam,
        iterations=iterations,
        incumbent=incumbent,
        plan=plan,
        proven=_closed(dual, best, incumbent),
    )


def ascend_coarse_first(
    dual: StageDual, start: np.ndarray, plan: np.ndarray, max_iterations: int
) -> Ascent:
    """:func:`ascend` in two phases: on the coarse grid (``COARSE_GRID_HZ``) until it proves the
    incumbent, stalls or spends ``COARSE_ROUNDS`` rounds, then on ``dual``'s own grid for up
    to ``max_iterations`` rounds from the coarse phase's best multipliers. The fine phase keeps
    the whole budget: certificates that take 140-200 fine rounds in a U = 200 rollout were
    lost when the coarse rounds counted against it. An integral stage whose fine bound is
    then more than ``FINE_REACH`` integers short of the incumbent stops there: so far below,
    the fine rounds have never reached a proof (nor the one-short bound that fixing needs).
    The bound returned is always ``dual``'s own at the returned multipliers (one more round
    where the coarse phase proved: the finer grid's bound is at least as high), so a
    certificate from it is checked on ``dual``'s grid like any other."""
    if dual.grid_hz >= COARSE_GRID_HZ:
        return ascend(dual, start, plan, max_iterations)
    coarse = replace(dual, grid_hz=COARSE_GRID_HZ)
    first = ascend(coarse, start, plan, min(COARSE_ROUNDS, max_iterations), max_halvings=0)
    bound, picked = dual.evaluate(first.multipliers)
    if first.proven or (dual.integral and _short_by(bound, first.incumbent) > FINE_REACH):
        return replace(first, bound=bound, iterations=first.iterations + 1)
    # that round is the fine phase's first
    rest = ascend(dual, first.multipliers, first.plan, max_iterations, evaluated=(bound, picked))
    return replace(rest, iterations=first.iterations + rest.iterations)


def _short_by(bound: float, incumbent: float) -> float:
    """How many integers an integral stage's bound falls short of proving ``incumbent``."""
    return incumbent - math.ceil(bound - INTEGER_SLACK)


def _target(dual: StageDual, best: float, incumbent: float) -> float:
    """Where the Polyak step aims. An integral stage aims at the next integer above the best
    bound (the level that proves one more migration), not at a poor incumbent far above the
    optimum, whose steps overshoot so far that the bound never rises."""
    if not dual.integral or not math.isfinite(best):
        return incumbent
    return min(incumbent, math.floor(best + INTEGER_SLACK) + AIM)


def _closed(dual: StageDual, bound: float, incumbent: float) -> bool:
    if dual.integral:
        return dual.proves(bound, incumbent)
    return reaches(bound, incumbent)


def reaches(bound: float, value: float) -> bool:
    """Whether a proven ``bound`` shows a real-valued stage's plan of ``value`` optimal (up to
    a relative 1e-12: the load in bytes is a sum of floats)."""
    return bound >= value - 1e-12 * max(abs(value), 1.0)


@numba.njit(cache=True)
def _place(  # pragma: no cover - compiled
    ids, user, server, weight, room, owner, rows, options, start, by_user, equality
):  # fmt: skip
    """:meth:`StageDual.repair`'s loops: the picks ``ids`` in order while they fit, then the
    users of ``rows`` left over, fewest options first (stable), each to its first pair
    with room. Fills ``owner`` and ``room``; False when an equality row's user finds none."""
    for k in ids:
        u, h = user[k], server[k]
        if owner[u] < 0 and weight[k] <= room[h]:
            owner[u] = k
            room[h] -= weight[k]
    left = np.flatnonzero(rows & (owner < 0))
    for u in left[np.argsort(options[left], kind="mergesort")]:
        found = False
        for j in range(start[u], start[u + 1]):
            k = by_user[j]
            h = server[k]
            if weight[k] <= room[h]:
                owner[u] = k
                room[h] -= weight[k]
                found = True
                break
        if not found and equality:
            return False
    return True
