"""The ``lagrangian`` method's tie-break: the fewest migrations among plans serving stage 1's
users, proven with a certificate where the engine can (:mod:`.engine` runs it after its load
stage).

It starts with a Lagrangian bound (:mod:`.lagrangian`: one knapsack per ES, subgradient ascent
from the LP duals, first on a coarse grid, then at most ``ASCENT_ROUNDS`` knapsack rounds on
whole hertz, the real weights; a round of 8 branch-and-bound knapsacks costs about 1 ms at
(200, 8)). Plans come from the knapsacks' picks: small problems that keep the users the
knapsacks place once and place the rest (:mod:`.restricted_mip`: a depth-first search, HiGHS
where it does not finish), the ascent climbing towards each; more users go free
(``ESCALATION_FREE``), then two ESs' users at a time are re-placed around the best plan
(:mod:`.server_neighbourhoods`) before HiGHS's stage 2 is asked (from the restricted tries'
plan; the better plan is kept). Reduced-cost fixing and the tree search need the DP's tables,
so they work on the 1 MHz grid, from that grid's own ascent (at most ``ASCENT_ROUNDS`` rounds
from the whole-hertz multipliers). Where the bound ends one to ``column_reach`` migrations
short (at most ``OPEN_LOAD_REACH`` where the load stage is open), column generation
(:mod:`.column_generation`, ``column_rounds`` knapsack rounds) climbs on towards the
Dantzig-Wolfe bound, which the ascent stalls under. Migrations are integers, so ceil(bound) >=
the best plan proves it, and HiGHS's stage 2 is not run. Otherwise HiGHS (``milp``'s stage 2)
looks for a better plan, and the bound goes on towards its incumbent. Where the bound stays at
most ``tree_reach`` short (at most ``OPEN_LOAD_REACH`` where the load stage is open), a branch and
bound on it (:mod:`.lagrangian_tree`, ``tree_rounds`` knapsack rounds, at most
``open_load_tree_rounds`` where the load stage is not proven) looks for better plans and proves
the best it finds; where that stops at its limit with the bound one migration short and HiGHS
stopped at its own, reduced-cost fixing leaves HiGHS a smaller problem that may settle it.

Its certificate (``migrations`` in ``dtasm-certificate/1``) is the ascent's multipliers,
whenever they prove the tie-break, or the tree search's tree (every leaf's multipliers) where
it does. A proof by fixing (the bound one short, HiGHS finding nothing better in what fixing
leaves) has none.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from dtasm_opt.core.limits import (
    DEFAULT_COLUMN_REACH,
    DEFAULT_COLUMN_ROUNDS,
    DEFAULT_FIXED_NODES,
    DEFAULT_OPEN_LOAD_TREE_ROUNDS,
    DEFAULT_ROUNDS_PER_TREE_NODE,
    DEFAULT_TREE_NODES_LEAST,
    DEFAULT_TREE_REACH,
    DEFAULT_TREE_ROUNDS,
    MAX_COLUMN_REACH,
    MAX_COLUMN_ROUNDS,
    MAX_NEIGHBOURHOOD_TRIES,
    MAX_NODE_LIMIT,
    MAX_TREE_NODES,
    MAX_TREE_REACH,
    MAX_TREE_ROUNDS,
    check_at_most,
)
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.errors import InputError
from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.column_generation import column_generation
from dtasm_opt.solvers.exact.grid_knapsack import GRID_HZ, WHOLE_HZ
from dtasm_opt.solvers.exact.lagrangian import (
    FINE_REACH,
    INTEGER_SLACK,
    StageDual,
    _short_by,
    ascend,
    ascend_coarse_first,
    lp_multipliers,
    migrations_dual,
)
from dtasm_opt.solvers.exact.lagrangian_tree import branch_and_bound, compact_multipliers
from dtasm_opt.solvers.exact.milp_driver import SolveOptions, second_stage
from dtasm_opt.solvers.exact.restricted_mip import (
    FREE_USERS,
    restricted_plan,
)
from dtasm_opt.solvers.exact.server_neighbourhoods import (
    NEIGHBOURHOOD_TRIES,
    server_pair_search,
)

# Knapsack rounds of the ascent on the 1 MHz grid, a work limit (the same answer on every run),
# after at most lagrangian.COARSE_ROUNDS on the coarse grid: certificates at U = 200 took 0-59
# rounds on bench_tiebreak's states and up to 195 in a rollout (docs/exact.md).
ASCENT_ROUNDS = 200
# HiGHS's node budget on the problem that reduced-cost fixing leaves (``fixed_nodes``, a work
# limit of its own: that problem is small, and a method run at --node-limit 1 would otherwise
# stop at its root). On fig4_training's seed 3, step 32 it needed about 55,800 nodes (226 s)
# to prove the tie-break that the tree leaves one short (docs/exact.md, "The tree's node cap").
FIXED_SEARCH_NODES = DEFAULT_FIXED_NODES
# The tie-break's tree search (:mod:`.lagrangian_tree`): its default budget in knapsack
# rounds (about 1 ms each at (200, 8), the DP with its table at every node included), a node
# cap that bounds its certificate, and how far short of the incumbent the root bound may be for
# the search to start (on bench_tiebreak's states the fine ascent never closed more than 2
# integers, docs/exact.md). On 12 unproven tie-breaks of fig4_training (U = 200, seed 1),
# given 100,000 rounds, the tree proved 11 in 2,266-73,811 rounds and 95-3,893 nodes; at
# 1,500 rounds and 500 nodes, the budget before, it proved none. Three more that stopped at
# 40,000 rounds in its rerun took 82,672-298,650 rounds and 3,183-10,066 nodes (87-275 s).
# The large budget goes only to steps whose load stage is proven, where a proven tie-break
# proves the whole step: on an overloaded step (U = 240) 400,000 rounds and 13,891 nodes
# proved nothing in 545 s, so there the tree keeps OPEN_LOAD_TREE_ROUNDS (docs/exact.md).
TREE_ROUNDS = DEFAULT_TREE_ROUNDS
OPEN_LOAD_TREE_ROUNDS = DEFAULT_OPEN_LOAD_TREE_ROUNDS
# The node cap (``tree_nodes``; where the settings name none, one node per ROUNDS_PER_NODE rounds of
# the budget, at least TREE_NODES: 40,000 rounds get 5,000 nodes, 400,000 get 50,000). The trees
# above spent 17-30 rounds a node, but the deep ones left open in the studies' reruns spend 6-8: at
# one per 20 rounds (20,000 nodes) the cap, not the rounds, stopped them. On fig7_xi's xi = 1.0,
# seed 1, step 29 the tree proves 48 migrations with 40,345 nodes in 332,659 rounds, where it
# stopped at 20,000 nodes and 150,333 rounds; on fig4_training's seed 3, step 32 it finds 42 (43
# before), still one short at 50,000 nodes (295,582 rounds). A node is 600-950 bytes of certificate:
# 3,893 nodes were 2.3 MB, which verify rechecks in about a minute; the 40,345 above, 38.5 MB and 7
# minutes (docs/exact.md, "The tree's node cap").
TREE_NODES = DEFAULT_TREE_NODES_LEAST
ROUNDS_PER_NODE = DEFAULT_ROUNDS_PER_TREE_NODE
# Column generation's knapsack rounds (:mod:`.column_generation`), from the ascent's end where
# its bound is 1 to ``column_reach`` migrations short: on bench states one or two short it
# reached the Dantzig-Wolfe bound, or showed that it cannot prove the incumbent, in 120-230
# rounds.
COLUMN_ROUNDS = DEFAULT_COLUMN_ROUNDS
# Both reaches where the load stage is open, whatever the settings name: a proven tie-break
# there proves no step.
OPEN_LOAD_REACH = 2
# How far short the bound may be for column generation to run, on a step whose load stage is
# proven (elsewhere OPEN_LOAD_REACH at most: there a proven tie-break does not prove the step, and
# at U = 280, where every tie-break is far short, it would add 10-23 s to steps of 23 s).
# Further short than OPEN_LOAD_REACH it climbs until the Dantzig-Wolfe bound is seen unable to
# come within the tree's reach. On four tie-breaks of the U = 200 rollouts left 4-5 short
# (2-3 s of it each): one proven by the tree after it, with a plan 2 better (39 to 37), one
# plan 1 better, two bounds about a migration higher; on 50 other states of the rollouts the
# same actions as with 2 (docs/exact.md). On a (60, 2) state (a test) it proves one 4 short.
COLUMN_REACH = DEFAULT_COLUMN_REACH
# How far short the bound may be for the tree to start, where the load stage is proven
# (``tree_reach``; OPEN_LOAD_REACH where it is open). After column generation three short, on
# three tie-breaks of the U = 200 rollouts, the tree proved two (54 and 80 migrations, where
# the rollouts had 57 and 82; 55,041 and 95,013 rounds, 94 and 162 s) and found 66 for 67 on
# the third (stopped at 20,000 nodes, 348 s); docs/exact.md.
TREE_REACH_PROVEN = DEFAULT_TREE_REACH


# Where the first tries leave the tie-break unproven, more users go free before HiGHS's stage
# 2: these counts, each at the ascent's multipliers and at the climbed ones (the picks differ,
# and each found plans the other did not). On 70 rollout states at (200, 8) they settled 6
# of the 30 tie-breaks that went to HiGHS's stage 2, proved 57 against 54, and cut the 70
# steps from 746 s to 598 s; a try costs 0.1-2.7 s, HiGHS's root on the restricted MIP
# (docs/design.md §9).
ESCALATION_FREE = (20, 40)


@dataclass(frozen=True)
class Reach:
    """How many migrations short the tie-break's bound may be for column generation and for
    the tree search to run, on one step (:meth:`TieBreak.reach_of`)."""

    columns: int
    tree: int


@dataclass
class TieBreak:
    """The tie-break's work limits and its search (see the module's docstring)."""

    rounds: int = ASCENT_ROUNDS
    tree_rounds: int = TREE_ROUNDS
    tree_nodes: int | None = None  # None: from the rounds (``ROUNDS_PER_NODE``)
    open_load_tree_rounds: int = OPEN_LOAD_TREE_ROUNDS  # at most tree_rounds
    column_rounds: int = COLUMN_ROUNDS
    column_reach: int = COLUMN_REACH  # OPEN_LOAD_REACH at most where the load stage is open
    tree_reach: int = TREE_REACH_PROVEN  # the same
    fixed_nodes: int = FIXED_SEARCH_NODES  # HiGHS after fixing, one short (0: none)
    escalate: bool = True  # the ESCALATION_FREE tries before HiGHS's stage 2
    neighbourhood_tries: int = NEIGHBOURHOOD_TRIES  # then two ESs' users re-placed at a time

    def tree_budget(self, load_proven: bool) -> tuple[int, int]:
        """The tree search's (knapsack rounds, node cap) on a step whose load stage is proven
        or not: ``tree_rounds``, or where the load stage is open at most
        ``open_load_tree_rounds`` (a proven tie-break there leaves the step unproven, and the
        trees there were futile); the node cap ``tree_nodes``, or where none is set one node
        per ``ROUNDS_PER_NODE`` rounds (at least ``TREE_NODES``). Where the load stage is open
        the cap is at most that default from its rounds, so that naming the default cap
        changes no step: a study's spec names it to tell its cells from those of another cap
        (``study --reuse``)."""
        rounds = self.tree_rounds
        if not load_proven:
            rounds = min(rounds, self.open_load_tree_rounds)
        nodes = max(TREE_NODES, rounds // ROUNDS_PER_NODE)
        if self.tree_nodes is not None:
            nodes = self.tree_nodes if load_proven else min(nodes, self.tree_nodes)
        return rounds, nodes

    def reach_of(self, load_proven: bool) -> Reach:
        """How many migrations short the tie-break's bound may be for column generation and
        for the tree to run: ``column_reach`` and ``tree_reach``, each at most ``OPEN_LOAD_REACH``
        where the load stage is open (a proven tie-break there proves no step)."""
        if load_proven:
            return Reach(self.column_reach, self.tree_reach)
        return Reach(min(self.column_reach, OPEN_LOAD_REACH), min(self.tree_reach, OPEN_LOAD_REACH))

    def fewest_migrations(
        self,
        problem: StepProblem,
        backend,
        options: SolveOptions,
        chosen: np.ndarray,
        info: dict,
        load_proven: bool,
    ) -> tuple[np.ndarray, dict | None]:
        """Fewest migrations among plans serving ``chosen``'s users; the certificate or None.

        1. The floor (everyone pays its cheapest pair) may already prove stage 1's plan.
        2. The ascent from the LP duals, one plan from its knapsacks' picks (a restricted
           MIP), the fine grid again towards the better plan; more restricted tries, then
           the neighbourhood search from the best plan. Where the bound proves the best
           plan, that is the answer and the certificate.
        3. Otherwise HiGHS's stage 2 from the restricted tries' plan, with the method's
           limits (``options``, ``milp``'s), incumbent z (the better of its plan and the
           neighbourhood search's); the bound again towards z where HiGHS found a better
           plan; column generation where the bound is 1 to :meth:`reach_of` ``.columns``
           short of z.
        4. If the bound proves z - :meth:`reach_of` ``.tree`` but not z, the tree search:
           better plans, and a proof whose tree is the certificate (:mod:`.lagrangian_tree`),
           within :meth:`tree_budget` (smaller where ``load_proven`` is false).
        5. If the tree stopped at its limit, HiGHS at its own, and the bound proves z - 1
           but not z, only a plan of exactly z - 1 migrations can beat z: every pair whose
           forced bound reaches z is fixed to 0 (reduced-cost fixing) and HiGHS searches
           what is left. A plan of z - 1 is then proven by the same multipliers; none
           (infeasible, or an optimum >= z) proves z by the fixing and HiGHS together (no
           certificate).
        """
        # The ascents on whole hertz (the real weights' bound); the DP's penalty tables, for
        # fixing and the tree, on the 1 MHz grid (docs/design.md §9).
        dual = migrations_dual(problem, problem.served(chosen), WHOLE_HZ)
        table = replace(dual, grid_hz=GRID_HZ)
        lam = _floor_multipliers(problem, dual.rows)
        bound, _ = dual.evaluate(lam)
        start = time.perf_counter()
        highs_s, nodes, rounds, certify_s, proof = 0.0, 0, 0, 0.0, None
        by_ascent = False
        reach = self.reach_of(load_proven)
        if not dual.proves(bound, dual.value(chosen)):
            t0 = time.perf_counter()
            # The ascent first, from stage 1's plan: its rounds cost about 1 ms at (200, 8)
            # (branch-and-bound knapsacks), and its repaired plans with the bound settle
            # most tie-breaks without HiGHS's stage 2, which costs 0.02-2 s at its root.
            result = ascend_coarse_first(dual, lp_multipliers(dual), chosen, self.rounds)
            rounds = result.iterations
            if result.incumbent < dual.value(chosen):
                chosen = result.plan
            if result.bound > bound:
                bound, lam = result.bound, result.multipliers
            # One plan from the knapsacks' picks (a restricted MIP), then the fine grid again
            # towards the better plan: measured from stage 1's plan, often far above the
            # optimum, the ascent may have judged the fine grid out of reach (FINE_REACH).
            bound, lam, chosen, spent = self._restricted(dual, table, lam, bound, chosen, info)
            rounds += spent
            # HiGHS's start stays the restricted tries' plan: from the neighbourhood search's
            # better plans its nodes went elsewhere and ended worse on 3 of 24 states
            # (docs/design.md §9); the better of the two plans is kept.
            highs_start = chosen
            bound, lam, chosen, spent = self._neighbourhoods(
                dual, table, lam, bound, chosen, info, reach
            )
            rounds += spent
            certify_s = time.perf_counter() - t0
            if not dual.proves(bound, dual.value(chosen)):
                # HiGHS with the method's limits
                before = dual.value(chosen)
                found, out = second_stage(problem, backend, options, highs_start)
                info.update(out)
                highs_s, nodes = out.get("stage2_s", 0.0), out.get("stage2_nodes", 0)
                t0 = time.perf_counter()
                if dual.value(found) < before:  # towards HiGHS's better plan
                    chosen = found
                    bound, lam, chosen, spent = self._climb(dual, lam, bound, chosen)
                    rounds += spent
                if dual.value(chosen) < before or "column_status" not in info:
                    # (not twice towards the same plan)
                    bound, lam, chosen, spent = self._columns(
                        dual, table, lam, bound, chosen, info, reach
                    )
                    rounds += spent
                certify_s += time.perf_counter() - t0
            else:  # the bound proves the engine's own plan: HiGHS is not run
                by_ascent = True
        value = dual.value(chosen)
        grid_hz, table_lam = dual.grid_hz, lam
        if not dual.proves(bound, value) and dual.proves(bound, value - reach.tree):
            # Fixing and the tree need the DP's tables (1 MHz), whose bound at the
            # whole-hertz multipliers can be a migration or more lower: climb on that grid
            # first (docs/design.md §9).
            table_lam, table_bound, chosen, spent = self._table_climb(table, lam, chosen, info)
            rounds += spent
            value = dual.value(chosen)
            if table_bound > bound:  # a bound of its own, certified on its grid
                bound, lam, grid_hz = table_bound, table_lam, table.grid_hz
        # The tree first: on 12 of fig4_training's unproven tie-breaks (U = 200), one and two
        # short, it proved 11 in 2,266-73,811 knapsack rounds (5-128 s) and found a better
        # plan on 5; the engine before had left each open, and on the one-short ones HiGHS's
        # search after fixing had stopped at its 10,000 nodes after 40-75 s (docs/exact.md).
        tree = None
        tree_rounds, tree_nodes = self.tree_budget(load_proven)
        if (
            tree_rounds > 0
            and tree_nodes > 0
            and not dual.proves(bound, value)
            and dual.proves(bound, value - reach.tree)
        ):
            t0 = time.perf_counter()
            # The clock as a safety net only, the tie-break stage's own limit (where a round
            # costs 50 ms, 40,000 rounds would be half an hour).
            tree = branch_and_bound(
                table, table_lam, chosen, tree_nodes, tree_rounds,
                time_limit_s=options.stage2_limit_s,
            )  # fmt: skip
            info.update(
                tree_status=(
                    "optimal" if tree.proven else "time_limit" if tree.timed_out else "work_limit"
                ),
                tree_nodes=tree.nodes,
                tree_rounds=tree.rounds,
                tree_budget=tree_rounds,
                tree_s=time.perf_counter() - t0,
            )
            if tree.incumbent < value:
                chosen, value = tree.plan, tree.incumbent
            if tree.proven:
                proof = "tree"
        # Where the tree stops at its limit with the bound one short, fixing: HiGHS on what
        # reduced-cost fixing leaves, a plan of z - 1 or the proof that none exists.
        if (
            info.get("stage2_status", "optimal") != "optimal"
            and proof is None
            and not dual.proves(bound, value)
            and dual.proves(bound, value - 1)
            and hasattr(backend, "forbid")
            and self.fixed_nodes > 0
        ):
            table_bound, penalty = table.penalties(table_lam)  # that grid's bound and penalties
            fixed = dual.pair_ids[dual.proves_each(table_bound + penalty, value)]
            info["fixed_pairs"] = int(fixed.size)
            backend.forbid(fixed)
            try:
                search = replace(options, node_limit=self.fixed_nodes)
                new, out = second_stage(problem, backend, search, chosen)
            finally:
                backend.forbid(fixed, forbidden=False)
            highs_s += out.get("stage2_s", 0.0)
            nodes += out.get("stage2_nodes", 0)
            info["fixed_search_status"] = out.get("stage2_status")
            if dual.value(new) < value:
                chosen, value = new, dual.value(new)  # z - 1: the bound proves it
            elif out.get("stage2_status") in ("optimal", "infeasible"):
                proof = "fixing"  # no plan of z - 1 exists: z is optimal
        info.update(
            stage2_objective=value,
            stage2_s=highs_s,
            stage2_nodes=nodes,
            lagrangian_rounds=rounds,
            lagrangian_bound=bound,
            lagrangian_s=certify_s,
            tie_break_s=time.perf_counter() - start,
        )
        certified = dual.proves(bound, value) or proof == "tree"
        if by_ascent:
            info["stage2_proof"] = "certificate"
        elif info.get("stage2_status", "optimal") == "optimal":
            info["stage2_proof"] = "highs"  # HiGHS's proof, or the floor's
        elif certified or proof is not None:
            info["stage2_highs_status"] = info["stage2_status"]
            info["stage2_proof"] = proof if proof is not None else "certificate"
        if certified or proof is not None:
            info["stage2_status"] = "optimal"
            info["stage2_bound"] = value
        else:  # the better proven bound: HiGHS's, or the ceiling of the Lagrangian one
            if tree is not None and tree.timed_out:
                info["stage2_status"] = "time_limit"  # the clock, not the work, stopped it
            ceiling = math.ceil(bound - INTEGER_SLACK)
            highs = info.get("stage2_bound")
            info["stage2_bound"] = ceiling if highs is None else max(float(highs), ceiling)
        if not certified:
            return chosen, None
        if tree is not None and tree.proven:
            return chosen, {
                "multipliers": table_lam.tolist(),  # the root's
                "bound": tree.bound,
                "proves_optimal": True,
                "tree": tree.tree,
                "tree_multipliers": compact_multipliers(tree.multipliers),
            }
        return chosen, {
            "multipliers": lam.tolist(),
            "bound": bound,
            "proves_optimal": True,
            "grid_hz": grid_hz,
        }

    def _table_climb(
        self, table, lam: np.ndarray, chosen: np.ndarray, info: dict
    ) -> tuple[np.ndarray, float, np.ndarray, int]:
        """The ascent on ``table``'s grid (1 MHz) from ``lam``, the whole-hertz multipliers,
        towards ``chosen``: (multipliers, their bound on that grid, plan, rounds spent)."""
        t0 = time.perf_counter()
        evaluated = table.evaluate(lam)
        value = table.value(chosen)
        if table.proves(evaluated[0], value - 1):
            # The tables' bound already reaches what fixing asks: no rounds spent.
            info.update(table_bound=evaluated[0], table_rounds=0)
            return lam, evaluated[0], chosen, 0
        result = ascend(table, lam, chosen, self.rounds, evaluated=evaluated)
        if result.incumbent < value:
            chosen = result.plan
        info.update(
            table_bound=result.bound,
            table_rounds=result.iterations,
            table_s=time.perf_counter() - t0,
        )
        return result.multipliers, result.bound, chosen, result.iterations

    def _columns(
        self, dual, table, lam, bound: float, chosen: np.ndarray, info: dict, reach: Reach
    ) -> tuple[float, np.ndarray, np.ndarray, int]:
        """Column generation from ``lam`` where the bound is 1..``reach.columns`` short of
        ``chosen`` (:meth:`reach_of`): (bound, multipliers, plan, knapsack rounds spent)."""
        value = dual.value(chosen)
        if self.column_rounds == 0 or not 1 <= _short_by(bound, value) <= reach.columns:
            return bound, lam, chosen, 0
        t0 = time.perf_counter()
        # Further short than the tree's reach, the bound's use is to come within it: the
        # search stops short only where the Dantzig-Wolfe bound cannot.
        slack = reach.tree if _short_by(bound, value) > reach.tree else 0
        columns = column_generation(dual, lam, chosen, self.column_rounds, slack=slack)
        info.update(
            ascent_bound=bound,
            column_status=columns.status,
            column_rounds=columns.iterations,
            column_s=time.perf_counter() - t0,
        )
        if columns.incumbent < value:
            chosen = columns.plan
        spent = columns.iterations
        if columns.bound > bound:
            bound, lam = columns.bound, columns.multipliers
            bound, lam, chosen, more = self._restricted(
                dual, table, lam, bound, chosen, info, climb=False
            )
            spent += more
        return bound, lam, chosen, spent

    def _climb(
        self, dual, lam: np.ndarray, bound: float, chosen: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, int]:
        """The ascent on the fine grid from ``lam`` towards ``chosen`` where the bound is
        1..FINE_REACH short of it: (bound, multipliers, plan, knapsack rounds spent)."""
        value = dual.value(chosen)
        if not 1 <= _short_by(bound, value) <= FINE_REACH:
            return bound, lam, chosen, 0
        again = ascend(dual, lam, chosen, self.rounds)
        if again.incumbent < value:
            chosen = again.plan
        if again.bound > bound:
            bound, lam = again.bound, again.multipliers
        return bound, lam, chosen, again.iterations

    def _neighbourhoods(
        self, dual, table, lam, bound: float, chosen: np.ndarray, info: dict, reach: Reach
    ) -> tuple[float, np.ndarray, np.ndarray, int]:
        """Where the bound does not prove ``chosen``, the large-neighbourhood search from it
        (:mod:`.server_neighbourhoods`, at most ``neighbourhood_tries`` neighbourhoods); then
        the ascent towards a better plan, and column generation where that leaves the bound
        1 to ``reach.columns`` short (which settled bench_exact's s1-t5 without HiGHS's stage 2).
        (bound, multipliers, plan, knapsack rounds spent)."""
        value = dual.value(chosen)
        if self.neighbourhood_tries == 0 or dual.proves(bound, value):
            return bound, lam, chosen, 0
        t0 = time.perf_counter()
        goal = math.ceil(bound - INTEGER_SLACK)  # a plan of this value is proven
        plan, tried = server_pair_search(dual, chosen, goal, self.neighbourhood_tries)
        info.update(neighbourhood_tries=tried, neighbourhood_s=time.perf_counter() - t0)
        if dual.value(plan) >= value:
            return bound, lam, chosen, 0
        info["neighbourhood_objective"] = dual.value(plan)
        bound, lam, chosen, spent = self._climb(dual, lam, bound, plan)
        if not dual.proves(bound, dual.value(chosen)):
            bound, lam, chosen, more = self._columns(dual, table, lam, bound, chosen, info, reach)
            spent += more
        return bound, lam, chosen, spent

    def _restricted(
        self,
        dual,
        table,
        lam: np.ndarray,
        bound: float,
        chosen: np.ndarray,
        info: dict,
        climb: bool = True,
    ) -> tuple[float, np.ndarray, np.ndarray, int]:
        """The restricted MIP's plan at ``lam`` (:mod:`.restricted_mip`: the ``FREE_USERS``
        most marginal picks free) where better than ``chosen``, and with ``climb`` the ascent
        towards it (``_climb``); where that is not proven, one more try from ``table``'s picks
        (the 1 MHz grid) at the same multipliers: another relaxation picks other users, and on
        bench_tiebreak's (200, 8) s3 t5 only those gave the optimum (the step 1.6 s instead of
        60 s with HiGHS's stage 2; from the climbed multipliers they did not, 49 s,
        docs/design.md §9). The climb comes between the tries because it often proves the
        first plan (a try costs 1-500 ms at (200, 8)), and a second try whose picks are the
        first one's (the same MIP) is not made. With ``climb`` (the first call) and
        ``escalate``, where both leave the tie-break unproven, tries with ``ESCALATION_FREE``
        free users follow, each at ``lam`` and at the climbed multipliers, a climb after each
        better plan, until the bound proves the best plan: at (200, 8) they settled 6 of 30
        tie-breaks that went to HiGHS's stage 2 (0.2-6.3 s instead of 0.5-56 s), and where
        they do not they cost 1-12 s. (bound, multipliers, plan, rounds spent)."""
        spent, at = 0, lam
        tried: list[tuple[np.ndarray, int]] = []  # the picks and free counts tried
        # (picks' relaxation, multipliers, free users, escalated); multipliers None: the
        # multipliers as the climbs have left them when the try comes
        tries: list[tuple[StageDual, np.ndarray | None, int, bool]] = [
            (picks, at, FREE_USERS, False) for picks in (dual, table)
        ]
        if table.grid_hz == dual.grid_hz:
            tries = tries[:1]
        if climb and self.escalate:
            tries += [(dual, where, free, True) for free in ESCALATION_FREE for where in (at, None)]
        for picks, where, free, escalated in tries:
            if dual.proves(bound, dual.value(chosen)):
                break
            where = lam if where is None else where
            t0 = time.perf_counter()
            _, picked = picks.evaluate(where)
            goal = math.ceil(bound - INTEGER_SLACK)  # a plan of this value is proven
            plan = None
            if not any(f == free and np.array_equal(picked, q) for q, f in tried):
                plan = restricted_plan(dual, where, free, picked=picked, goal=goal)
                tried.append((picked, free))
            info["restricted_s"] = info.get("restricted_s", 0.0) + time.perf_counter() - t0
            if plan is not None and dual.value(plan) < dual.value(chosen):
                info["restricted_objective"] = dual.value(plan)
                if picks is table:
                    info["restricted_mhz"] = True
                if escalated:
                    info["restricted_free"] = free
                chosen, better = plan, True
            else:
                better = False
            # the first tries climb whatever they found (the bound may only now be within
            # FINE_REACH); the escalated ones only towards a better plan, where a climb
            # towards the same plan would spend rounds and move the next try's multipliers
            if climb and (better or not escalated):
                bound, lam, chosen, more = self._climb(dual, lam, bound, chosen)
                spent += more
        return bound, lam, chosen, spent


def _floor_multipliers(problem: StepProblem, served: np.ndarray) -> np.ndarray:
    """lam[u] = u's cheapest pair: L = every served user pays its cheapest move (milp's
    stage-2 floor), which already proves a plan that keeps everyone it can at home."""
    pair_cost, _ = problem.second_stage_costs("migrations")
    cheapest = np.full(problem.n_users, np.inf)
    np.minimum.at(cheapest, problem.pairs.user, pair_cost)
    return np.where(served & np.isfinite(cheapest), cheapest, 0.0)


def make_tie_break(settings: MethodSettings) -> TieBreak:
    """The tie-break with the settings' work limits (the defaults where they name none),
    each refused by name unless it is an integer in its range."""

    def limit(name: str, default: int, most: int) -> int:
        return work_limit(getattr(settings, name), default, name, most)

    return TieBreak(
        tree_rounds=limit("tree_rounds", TREE_ROUNDS, MAX_TREE_ROUNDS),
        tree_nodes=(
            None if settings.tree_nodes is None else limit("tree_nodes", 0, MAX_TREE_NODES)
        ),
        open_load_tree_rounds=limit(
            "open_load_tree_rounds", OPEN_LOAD_TREE_ROUNDS, MAX_TREE_ROUNDS
        ),
        column_rounds=limit("column_rounds", COLUMN_ROUNDS, MAX_COLUMN_ROUNDS),
        column_reach=limit("column_reach", COLUMN_REACH, MAX_COLUMN_REACH),
        tree_reach=limit("tree_reach", TREE_REACH_PROVEN, MAX_TREE_REACH),
        fixed_nodes=limit("fixed_nodes", FIXED_SEARCH_NODES, MAX_NODE_LIMIT),
        neighbourhood_tries=limit(
            "neighbourhood_tries", NEIGHBOURHOOD_TRIES, MAX_NEIGHBOURHOOD_TRIES
        ),
    )


def work_limit(value: int | None, default: int, name: str, most: int) -> int:
    """A work budget (knapsack rounds, HiGHS nodes) from the settings (None: the engine's
    default), refused by name unless it is an integer in 0..most (a study or API caller gets
    no CLI check)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InputError(f"{name}: {value!r} is invalid, must be an integer >= 0")
    return check_at_most(int(value), most, name)
