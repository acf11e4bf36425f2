"""Branch and bound on the Lagrangian bound of an integral stage (the tie-break), with a tree
that ``verify`` re-checks.

Where the ascent's bound stops short of the incumbent z (:mod:`.lagrangian`), the search splits
the plans by where one user goes: one child per pair of that user, the pair forced in (its
user loses its row and its other pairs, its cost joins the constant, its grid units leave its
ES). A child whose bound proves z is closed; since a forced pair's bound is at least the
parent's L plus its penalty (:meth:`StageDual.penalties`), many children close without a
knapsack of their own. Each open child climbs from its parent's multipliers. The search is
depth first, children in order of penalty (the most promising plans first), and every round
repairs the knapsacks' picks into a plan, so it also finds better plans than z, and goes on
to prove the best it finds. Branching user: the one with most children closed by penalty,
among those the knapsacks did not take exactly once (the subgradient's support).

Nodes climb on the stage's own grid (1 MHz): the coarse grid's looser bound closed fewer
children and cost more nodes than it saved per round (``NODE_ROUNDS``).

The tree is the certificate: every leaf is a set of forced pairs whose bound at stored
multipliers proves z, or whose forced pairs alone overfill an ES; every inner node lists a
child for each ES its user may go to (:mod:`dtasm_opt.core.certificate` checks all of it with
its own admissibility and knapsacks). Limits are in work (nodes, knapsack rounds): the same
tree on every run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.lagrangian import INTEGER_SLACK, StageDual, ascend

# Each node below the root climbs from its parent's multipliers for at most this many knapsack
# rounds, halving its step after NODE_PATIENCE rounds without a better bound (the root has had
# the engine's full ascent). On bench_tiebreak's u200-h8-s1-t5 and -t20 states, (40, 8) on the
# 1 MHz grid closed the trees in 15 and 159 nodes (462 and 1,201 rounds); 20 rounds on the
# 4 MHz grid, a quarter of the cost per round, needed 174 nodes (2,792 rounds) for the first,
# in the same time: its looser bound closes fewer children. (15, 5) took fewer rounds on four
# states at (100, 4) and (120, 4) (455-1,554 against 716-1,500+) but more on those two (595 and
# 1,432).
NODE_ROUNDS = 40
NODE_PATIENCE = 8
# A certificate writes each node's multipliers as their changes from the closest of this many
# entries before it (compact_multipliers).
COMPACT_WINDOW = 64


@dataclass(frozen=True)
class TreeSearch:
    """What the search reached."""

    proven: bool  # the tree closed: nothing beats ``incumbent``
    timed_out: bool  # stopped by the clock (the safety net), not by its work limits
    bound: float  # the least bound over the tree's leaves (when proven; else -inf)
    incumbent: float
    plan: np.ndarray  # (K,) mask over the problem's pairs: the best plan found
    nodes: int
    rounds: int  # knapsack rounds, coarse and fine
    tree: list[dict] | None  # the certificate's tree in preorder (when proven)
    multipliers: list[np.ndarray]  # the tree's leaves point into this list


class _Limit(Exception):
    pass


@dataclass
class _Search:
    root: StageDual
    node_limit: int
    round_limit: int
    node_rounds: int
    plan: np.ndarray
    incumbent: float
    nodes: int = 0
    rounds: int = 0
    least: float = math.inf  # the least bound of a closed leaf so far
    deadline: float | None = None  # time.perf_counter() at which the clock stops the search
    timed_out: bool = False

    def __post_init__(self) -> None:
        # arrays, not lists of floats: a tree of 50,000 nodes keeps as many entries, and
        # U floats in a list take four times the memory (about 6.5 KB at U = 200)
        self.multipliers: list[np.ndarray] = []
        self.user_pairs = [
            np.flatnonzero(self.root.problem.pairs.user[self.root.pair_ids] == u)
            for u in range(self.root.problem.n_users)
        ]

    def _keep(self, lam: np.ndarray) -> int:
        self.multipliers.append(np.array(lam, dtype=np.float64))
        return len(self.multipliers) - 1

    def _closed(self, bound: float) -> bool:
        # +inf: a forced pair that no longer fits its ES's grid (an infeasible child)
        return bound == math.inf or math.ceil(bound - INTEGER_SLACK) >= self.incumbent

    def _leaf(self, lam: np.ndarray, bound: float) -> list[dict]:
        self.least = min(self.least, bound)
        return [{"multipliers": self._keep(lam)}]

    def visit(self, dual: StageDual, lam: np.ndarray, climb: bool) -> list[dict]:
        """The subtree of ``dual``'s node in preorder: a branch, then its children's
        subtrees in the order of its ESs (a flat list: no nesting as deep as the tree)."""
        if dual.infeasible:
            return [{"infeasible": True}]
        if self.nodes >= self.node_limit or self.rounds >= self.round_limit:
            raise _Limit
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            self.timed_out = True
            raise _Limit
        self.nodes += 1
        if climb:
            rounds = min(self.node_rounds, self.round_limit - self.rounds)
            climbed = ascend(
                dual, lam, self.plan, rounds, incumbent=self.incumbent, patience=NODE_PATIENCE
            )
            self.rounds += climbed.iterations
            self._improve(climbed.plan, climbed.incumbent)
            lam = climbed.multipliers
        # the node's bound and penalties at its best multipliers (one more round)
        bound, picked, penalty = dual.evaluate_with_penalties(lam)
        self.rounds += 1
        repaired = dual.repair(picked)
        if repaired is not None:
            self._improve(repaired, dual.value(repaired))
        if self._closed(bound):
            return self._leaf(lam, bound)
        user = self._branching_user(dual, bound, picked, penalty)
        if user is None:  # every user left has one pair: the node is a single plan
            return self._settle(dual)
        mine = self.user_pairs[user]
        local = np.searchsorted(dual.pair_ids, self.root.pair_ids[mine])
        parent = None
        subtrees: dict[int, list[dict]] = {}
        for k in local[np.argsort(penalty[local], kind="stable")]:
            server = int(dual.problem.pairs.server[dual.pair_ids[k]])
            if self._closed(bound + penalty[k]):
                # closed by the penalty: the child's bound at these multipliers proves it
                self.least = min(self.least, bound + float(penalty[k]))
                parent = self._keep(lam) if parent is None else parent
                subtrees[server] = [{"multipliers": parent}]
                continue
            subtrees[server] = self.visit(_force(dual, int(k)), lam, climb=True)
        out = [{"user": int(user), "children": sorted(subtrees)}]
        for server in sorted(subtrees):
            out += subtrees[server]
        return out

    def _settle(self, dual: StageDual) -> list[dict]:
        """A node whose users each have one pair left (the grid rounded their plan in, so the
        knapsacks could not close it): the chain that places them, ending at the plan itself,
        which either overfills an ES (an infeasible leaf) or is a plan (L = its value, at any
        multipliers)."""
        pairs = dual.problem.pairs
        users = pairs.user[dual.pair_ids]
        final = replace(
            dual,
            pair_ids=dual.pair_ids[:0],
            cost=dual.cost[:0],
            const=dual.const + float(dual.cost.sum()),
            rows=np.zeros_like(dual.rows),
            forced=(*dual.forced, *map(int, dual.pair_ids)),
        )
        plan = np.zeros(pairs.n_pairs, dtype=bool)
        plan[list(final.forced)] = True
        if not dual.problem.fits(plan).all():
            leaf = [{"infeasible": True}]
        else:
            if final.const < self.incumbent:
                if not _within_margin(dual.problem, plan):
                    raise _Limit  # a plan for the ESs, not for the model: neither plan nor leaf
                self._improve(plan, final.const)
            leaf = self._leaf(np.zeros(dual.rows.shape), final.const)  # L = its value
        chain = [
            {"user": int(u), "children": [int(h)]}
            for u, h in zip(users, pairs.server[dual.pair_ids], strict=True)
        ]
        return chain + leaf

    def _improve(self, plan: np.ndarray, value: float) -> None:
        if value < self.incumbent:
            self.plan, self.incumbent = plan, value

    def _branching_user(
        self, dual: StageDual, bound: float, picked: np.ndarray, penalty: np.ndarray
    ) -> int | None:
        """The user whose children close best by penalty, among those not taken exactly once
        (the subgradient's support); where every row's user is taken once but the plan does
        not fit on the real numbers (the grid rounded it in), any user with two pairs or more."""
        taken = dual.taken(picked)
        user = dual.problem.pairs.user[dual.pair_ids]
        candidates = np.flatnonzero(dual.rows & (taken != 1))
        if candidates.size == 0:
            counts = np.bincount(user, minlength=dual.problem.n_users)
            candidates = np.flatnonzero(dual.rows & (counts > 1))
        if candidates.size == 0:
            return None
        closed = self._closed_each(bound + penalty)
        closed_children = np.bincount(user, weights=closed, minlength=dual.problem.n_users)
        children = np.bincount(user, minlength=dual.problem.n_users)
        share = closed_children / np.maximum(children, 1)
        return int(candidates[np.argmax(share[candidates])])

    def _closed_each(self, bounds: np.ndarray) -> np.ndarray:
        return (np.ceil(bounds - INTEGER_SLACK) >= self.incumbent).astype(float)


def _within_margin(problem: StepProblem, plan: np.ndarray) -> bool:
    """Whether ``plan`` fills no ES beyond the model's capacity P (1 - margin)."""
    pairs = problem.pairs
    return all(
        math.fsum(pairs.required_hz[plan & (pairs.server == h)]) <= cap
        for h, cap in enumerate(problem.model_capacity_hz)
    )


def _force(dual: StageDual, k: int) -> StageDual:
    """``dual`` with its pair k (local index) forced in."""
    pairs = dual.problem.pairs
    user = pairs.user[dual.pair_ids[k]]
    keep = pairs.user[dual.pair_ids] != user
    rows = dual.rows.copy()
    rows[user] = False
    return replace(
        dual,
        pair_ids=dual.pair_ids[keep],
        cost=dual.cost[keep],
        const=dual.const + float(dual.cost[k]),
        rows=rows,
        forced=(*dual.forced, int(dual.pair_ids[k])),
    )


def compact_multipliers(table: list[np.ndarray]) -> list:
    """``table`` as a certificate writes it (``verify`` reads it back, bit for bit): each
    entry as the users whose multipliers differ from the earlier entry (of the
    ``COMPACT_WINDOW`` before it) that it differs from least, with their values, where that
    is under half of them; else in full. A child climbs from its parent's multipliers, and
    most change few: step 14's tree of 3,865 lists of 200 (12 MB in full)
    changes 1 entry of 200 from its closest at the median, 16 on average."""
    if not table:
        return []
    rows = np.asarray(table, dtype=np.float64)
    out: list = []
    for i, row in enumerate(rows):
        lo = max(0, i - COMPACT_WINDOW)
        if i > lo:
            differ = rows[lo:i] != row
            counts = differ.sum(axis=1)
            k = int(np.argmin(counts))
            if 2 * counts[k] < row.size:
                changed = np.flatnonzero(differ[k])
                out.append(
                    {"base": lo + k, "users": changed.tolist(), "values": row[changed].tolist()}
                )
                continue
        out.append(row.tolist())
    return out


def branch_and_bound(
    dual: StageDual,
    multipliers: np.ndarray,
    plan: np.ndarray,
    node_limit: int,
    round_limit: int,
    node_rounds: int = NODE_ROUNDS,
    time_limit_s: float | None = None,
) -> TreeSearch:
    """Prove ``plan`` (a feasible mask over the problem's pairs) optimal for the integral
    ``dual``, or find better plans and prove the best: depth first from ``multipliers`` (the
    ascent's best), within ``node_limit`` nodes and ``round_limit`` knapsack rounds, and
    ``time_limit_s`` seconds as a safety net (checked at each node; None: no clock)."""
    if not dual.integral:
        raise ValueError("the tree search needs an integral stage (ceil(bound) proves)")
    search = _Search(dual, node_limit, round_limit, node_rounds, plan, dual.value(plan))
    if time_limit_s is not None:
        search.deadline = time.perf_counter() + time_limit_s
    try:
        tree: list[dict] | None = search.visit(dual, multipliers, climb=False)
    except _Limit:
        tree = None
    return TreeSearch(
        proven=tree is not None,
        timed_out=search.timed_out,
        bound=search.least if tree is not None else -math.inf,
        incumbent=search.incumbent,
        plan=search.plan,
        nodes=search.nodes,
        rounds=search.rounds,
        tree=tree,
        multipliers=search.multipliers if tree is not None else [],
    )
