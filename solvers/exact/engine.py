"""The ``lagrangian`` method: MILP-greedy whose optima come with a checkable certificate.

Stage 1 (least cloud load) is :mod:`.load_stage`: a plan serving everyone where a quick
search or a regret heuristic finds one, else ``milp``'s (:mod:`.milp`) with the same
settings, then the load stage's own Lagrangian bound and plans. Where the settings name no
backend and no node limit, the engine uses the scaled matrix and ``ENGINE_NODE_LIMIT``
nodes per HiGHS stage, so that it repeats itself (docs/design.md §9). The tie-break (fewest
migrations among plans serving stage 1's users) is :mod:`.tie_break`: Lagrangian bounds,
column generation and a tree search on them, plans from their knapsacks and from HiGHS.

Every proof comes with the multipliers in ``Decision.info["certificate"]``
(``dtasm-certificate/1``), from which ``verify`` recomputes the bound with its own knapsacks
(:mod:`dtasm_opt.core.certificate`):

- ``load`` (:mod:`.load_stage`): when every user with an admissible pair is served,
  lam[u] = -load[u] proves that no plan leaves less in the cloud. When the ESs are
  overloaded and HiGHS stops at its limit, the multipliers of the load stage's ascent on
  whole hertz (``grid_hz``: 1) certify a bound above HiGHS's own, and prove the plan where
  it reaches it, which is seldom (the duality gap of this generalized assignment problem).
- ``migrations`` (:mod:`.tie_break`): the ascent's multipliers, or the tree search's tree.
  A proof by fixing has none.

What it does not do (issue 9): prove an overloaded load stage whose best plan stays above
every bound it has (HiGHS's, and the load stage's own on whole hertz): branching on that
bound was measured and not built (docs/design.md §9, docs/exact.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dtasm_opt.core.certificate import CERTIFICATE_FORMAT
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.limits import (
    DEFAULT_CLOUD_SETS,
    DEFAULT_NODE_LIMIT,
    MAX_CLOUD_SETS,
    MAX_NODE_LIMIT,
)
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Decision
from dtasm_opt.models.pairs import action_from_assignment
from dtasm_opt.models.step_problem import step_problem
from dtasm_opt.solvers.exact.grid_knapsack import GRID_HZ
from dtasm_opt.solvers.exact.load_plans import LOAD_PLAN_TRIES
from dtasm_opt.solvers.exact.load_stage import LOAD_ROUNDS, LoadBudget, load_stage
from dtasm_opt.solvers.exact.milp import MilpGreedy, backend_class, make_milp
from dtasm_opt.solvers.exact.milp_driver import second_stage
from dtasm_opt.solvers.exact.tie_break import TieBreak, make_tie_break, work_limit

# The engine's defaults where the settings name none. The scaled matrix (objective in MB,
# capacity rows in units of capacity; the same optimum) proves more in less time than the
# direct one (docs/exact.md; at (200, 8) it proved a tie-break in 23 s where the
# direct matrix needs 52 s). A node limit per HiGHS stage makes the engine repeat
# itself by default (issue 9: limits in work, the clock only as a safety net): 2,000 nodes,
# as the shipped sets' references, is 0.1-40 s per stage at (200, 8).
ENGINE_BACKEND = "scaled"
ENGINE_NODE_LIMIT = DEFAULT_NODE_LIMIT


@dataclass
class LagrangianEngine:
    """MILP-greedy with its own tie-break and certificates (see the module's docstring)."""

    milp: MilpGreedy
    name: str = "lagrangian"
    load_rounds: int = LOAD_ROUNDS
    load_plans: int = LOAD_PLAN_TRIES
    overloaded_nodes: int | None = None  # None: HiGHS's stage node limit, as any load stage
    cloud_sets: int = DEFAULT_CLOUD_SETS  # an overloaded stage's lighter clouds refuted (0: none)
    tie_break: TieBreak = field(default_factory=TieBreak)  # its work limits and search

    def decide(self, inst: Instance, step: int) -> Decision:
        options = self.milp.options
        backend = backend_class(self.milp.backend)()
        problem = step_problem(inst, options.margin)
        budget = LoadBudget(
            self.load_rounds, self.load_plans, self.overloaded_nodes, self.cloud_sets
        )
        first, load = load_stage(inst, problem, backend, options, budget)
        info = dict(first.info)
        if options.second_stage != "none":
            info.pop("stage2_status", None)  # the tie-break below reports its own
        if not hasattr(backend, "problem"):  # no admissible pair: solve_step built nothing
            return Decision(
                first.action, first.status, first.bound_bytes, info | {"stage2_status": "skipped"}
            )
        p = problem.pairs
        chosen = first.action[p.user] == p.server
        cert: dict = {"format": CERTIFICATE_FORMAT, "grid_hz": GRID_HZ}
        if load is not None:
            cert["load"] = load
        status, bound_bytes = first.status, first.bound_bytes
        if options.second_stage == "migrations":
            proven = status == "optimal"  # the load stage: the tree's budget depends on it
            chosen, migrations = self.tie_break.fewest_migrations(
                problem, backend, options, chosen, info, proven
            )
            if migrations is not None:
                cert["migrations"] = migrations
        elif options.second_stage != "none":
            chosen, out = second_stage(problem, backend, options, chosen)
            info.update(out)
        if len(cert) > 2:
            info["certificate"] = cert
        action = action_from_assignment(inst, p, chosen)
        return Decision(action=action, status=status, bound_bytes=bound_bytes, info=info)


def make_lagrangian(name: str, settings: MethodSettings) -> LagrangianEngine:
    """The ``lagrangian`` method: ``milp``'s settings (limits, backend, tie-break), with the
    engine's own defaults where they name none: the scaled backend and a work limit of
    ``ENGINE_NODE_LIMIT`` nodes per HiGHS stage (the time limit stays, as a safety net)."""
    settings = replace(
        settings,
        backend=settings.backend or ENGINE_BACKEND,
        node_limit=ENGINE_NODE_LIMIT if settings.node_limit is None else settings.node_limit,
    )
    overloaded = settings.overloaded_nodes
    if overloaded is not None:  # None: the stage's node limit, as on any load stage
        overloaded = work_limit(overloaded, 0, "overloaded_nodes", MAX_NODE_LIMIT)
    return LagrangianEngine(
        milp=make_milp(name, settings),
        name=name,
        overloaded_nodes=overloaded,
        cloud_sets=work_limit(
            DEFAULT_CLOUD_SETS if settings.cloud_sets is None else settings.cloud_sets,
            0,
            "cloud_sets",
            MAX_CLOUD_SETS,
        ),
        tie_break=make_tie_break(settings),
    )
