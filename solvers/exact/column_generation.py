"""The Dantzig-Wolfe bound of a stage by column generation: better multipliers than the ascent.

The Lagrangian bound L(lam) of :mod:`.lagrangian` is at most the Dantzig-Wolfe bound, the LP
over each ES's packings (columns) with one row per relaxed user and one "at most one packing"
row per ES; its row duals are the multipliers that reach it. Subgradient steps stall below
it: on bench states one migration short, the ascent's 200-250 rounds ended 0.2-0.8 below
the Dantzig-Wolfe bound, which proved the incumbent on some (u200-h8-s1-t5: 8.855 after the
ascent, 9.032 here, so ceil proves 10). So the engine goes on from the ascent's end:

1. A restricted master LP (HiGHS) over the packings seen so far, seeded with the incumbent's
   (so the "= 1" rows are feasible from the start) and the knapsacks' picks.
2. Its row duals, smoothed towards the best multipliers so far (Wentges smoothing,
   ``SMOOTHING``; without it the duals jump between extreme points and the bound crawls:
   400 rounds at 0.3 against 162 at 0.85 on one state), price one knapsack per ES: the same
   grid dynamic programme, so L at the smoothed duals is a valid bound like any other, and
   every packing whose reduced cost is negative at the master's own duals joins the master.
   Where none does (mispricing), the round is repeated at the master's duals.
3. It stops when the bound proves the incumbent, when no packing prices out (the master's
   value is then the Dantzig-Wolfe bound), at the round limit, or, for an integral stage,
   as soon as the master's value shows that the bound cannot prove the incumbent: the
   restricted master's value is never below the Dantzig-Wolfe bound, so once it is at most
   z - 1, no multipliers give ceil(L) >= z (the tree search takes over from there).

Every round repairs the knapsacks' picks into a plan and keeps a better one, as the ascent
does. The multipliers returned are the best bound's: the certificate is unchanged (``verify``
recomputes L from them with its own knapsacks). Deterministic: a work limit in knapsack
rounds, and HiGHS's simplex on one thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np

from dtasm_opt.solvers.exact.highs_runtime import quiet_highs
from dtasm_opt.solvers.exact.lagrangian import StageDual, _closed, _project, _short_by

# Weight of the best multipliers in the point priced each round (Wentges smoothing). On two
# states at (120, 4): 0.3 did not converge in 400 rounds, 0.7 took 258-293, 0.85 162-226, 0.95
# 133-181 but reached a lower bound on the one it proved (37.02 against 37.06).
SMOOTHING = 0.85
# A packing joins the master when its reduced cost is below this (costs are migrations).
REDUCED_COST_TOL = 1e-9


class _Master:
    """The restricted master LP: one column per packing seen, rows per relaxed user, then one
    convexity row ("at most one packing") per ES."""

    def __init__(self, dual: StageDual) -> None:
        self.dual = dual
        self.users = np.flatnonzero(dual.rows)
        self.row_of = np.full(dual.problem.n_users, -1)
        self.row_of[self.users] = np.arange(self.users.size)
        n, h_count = self.users.size, dual.problem.n_servers
        self.highs = quiet_highs()
        self.highs.setOptionValue("threads", 1)
        lower = np.concatenate((np.ones(n) if dual.equality else np.full(n, -np.inf),
                                np.full(h_count, -np.inf)))  # fmt: skip
        upper = np.ones(n + h_count)
        self.highs.addRows(n + h_count, lower, upper, 0, np.zeros(1, np.int32),
                           np.zeros(0, np.int32), np.zeros(0))  # fmt: skip
        self.seen: set[tuple[int, ...]] = set()

    def add(self, server: int, local: np.ndarray) -> bool:
        """Add the packing ``local`` (indices into the dual's pairs, all on ``server``); False
        if it is there already."""
        key = (server, *sorted(local.tolist()))
        if key in self.seen:
            return False
        self.seen.add(key)
        dual = self.dual
        rows = np.append(self.row_of[dual._user[local]], self.users.size + server)  # type: ignore[attr-defined]
        self.highs.addCol(float(dual.cost[local].sum()), 0.0, np.inf, rows.size,
                          rows.astype(np.int32), np.ones(rows.size))  # fmt: skip
        return True

    def solve(self) -> tuple[float, np.ndarray, np.ndarray] | None:
        """(the master's value with the stage's constant, lam over all users, the ES rows'
        duals), or None if the LP did not solve (then the search stops where it is)."""
        self.highs.run()
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        y = np.asarray(self.highs.getSolution().row_dual)
        lam = np.zeros(self.dual.problem.n_users)
        lam[self.users] = y[: self.users.size]
        value = self.dual.const + self.highs.getInfo().objective_function_value
        return value, _project(self.dual, lam), y[self.users.size :]


@dataclass(frozen=True)
class Columns:
    """What column generation reached (the fields the engine reads are :class:`Ascent`'s)."""

    bound: float  # the best L(lam) seen: a valid bound
    multipliers: np.ndarray  # (U,) the multipliers of ``bound``
    iterations: int  # knapsack rounds, the start's evaluation included
    incumbent: float
    plan: np.ndarray  # (K,) mask of the best plan
    master: float  # the restricted master's last value (>= the Dantzig-Wolfe bound)
    # proven | converged (master = the DW bound) | short (the DW bound cannot prove the
    # incumbent) | round_limit | lp_failed
    status: str


def column_generation(
    dual: StageDual,
    start: np.ndarray,
    plan: np.ndarray,
    max_rounds: int,
    prove: bool = True,
    slack: int = 0,
) -> Columns:
    """The best Lagrangian bound found by column generation from multipliers ``start`` (the
    ascent's best) and the feasible plan ``plan`` (a mask over the problem's pairs), within
    ``max_rounds`` knapsack rounds; see the module's docstring. ``prove=False``: go on to the
    Dantzig-Wolfe bound even where the incumbent is proven or cannot be. ``slack``: stop
    ``short`` only where the Dantzig-Wolfe bound cannot come within ``slack`` integers of the
    incumbent (the engine's far-short tie-breaks, which the tree takes within its reach)."""
    incumbent = dual.value(plan)
    master = _Master(dual)
    per_es = dual._per_es  # type: ignore[attr-defined]
    mask = plan[dual.pair_ids]
    for h, ks in enumerate(per_es):
        master.add(h, ks[mask[ks]])
    best_lam = _project(dual, start)
    best, picked = dual.evaluate(best_lam)
    rounds, value, status = 1, math.inf, "round_limit"
    plan, incumbent = _better(dual, picked, plan, incumbent)
    _add_picks(master, per_es, picked, None)
    while not (prove and _closed(dual, best, incumbent)) and rounds < max_rounds:
        solved = master.solve()
        if solved is None:
            status = "lp_failed"
            break
        value, lam_master, mu = solved
        if prove and dual.integral and _short_by(value, incumbent) > slack:
            status = "short"  # the Dantzig-Wolfe bound itself cannot prove the incumbent
            break
        added, weight = 0, SMOOTHING
        while rounds < max_rounds:
            lam = _project(dual, weight * best_lam + (1.0 - weight) * lam_master)
            bound, picked = dual.evaluate(lam)
            rounds += 1
            if bound > best:
                best, best_lam = bound, lam
            plan, incumbent = _better(dual, picked, plan, incumbent)
            added = _add_picks(master, per_es, picked, (lam_master, mu))
            if added or weight == 0.0:
                break
            weight = 0.0  # mispricing: price the master's own duals
        if added == 0 and weight == 0.0:
            status = "converged"  # nothing prices out at the master's duals: value = DW
            break
    if prove and _closed(dual, best, incumbent):
        status = "proven"
    return Columns(best, best_lam, rounds, incumbent, plan, value, status)


def _better(
    dual: StageDual, picked: np.ndarray, plan: np.ndarray, incumbent: float
) -> tuple[np.ndarray, float]:
    repaired = dual.repair(picked)
    if repaired is not None and dual.value(repaired) < incumbent:
        return repaired, dual.value(repaired)
    return plan, incumbent


def _add_picks(
    master: _Master,
    per_es: list[np.ndarray],
    picked: np.ndarray,
    duals: tuple[np.ndarray, np.ndarray] | None,
) -> int:
    """Add each ES's picked packing (only those pricing out at ``duals``, where given)."""
    dual, added = master.dual, 0
    for h, ks in enumerate(per_es):
        local = ks[picked[ks]]
        if duals is not None:
            lam, mu = duals
            reduced = float(dual.cost[local].sum() - lam[dual._user[local]].sum()) - mu[h]  # type: ignore[attr-defined]
            if reduced >= -REDUCED_COST_TOL:
                continue
        added += master.add(h, local)
    return added
