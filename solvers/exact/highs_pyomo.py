"""The per-step MILP as the Pyomo model of :mod:`dtasm_opt.models.step_milp`, solved by HiGHS
through Pyomo's persistent interface (``pyomo.contrib.solver``'s ``highs``).

The reference formulation: readable, writable as LP/MPS, and cross-checked against the direct
highspy build (:mod:`dtasm_opt.solvers.exact.highs_direct`), which rollouts use because Pyomo's
build and translation cost up to a few tenths of a second per step. Pyomo 6.10's persistent HiGHS
interface has no warm start, so HiGHS starts without an incumbent here.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.solution import Decision
from dtasm_opt.models.step_milp import add_second_stage, build_step_model
from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.highs_runtime import ensure_threads, solver_output
from dtasm_opt.solvers.exact.milp_driver import SolveOptions, StageRun, solve_step

_TERMINATION = {
    TerminationCondition.convergenceCriteriaSatisfied: "optimal",
    TerminationCondition.maxTimeLimit: "time_limit",
    TerminationCondition.provenInfeasible: "infeasible",
    # Pyomo reports HiGHS's kSolutionLimit (our mip_max_nodes) as an iteration limit.
    TerminationCondition.iterationLimit: "work_limit",
    TerminationCondition.interrupted: "interrupted",
}


class PyomoBackend:
    """HiGHS through Pyomo: the model is built, translated and loaded in :meth:`build`."""

    name = "highs-pyomo"

    # Set by build(); the driver calls build() before anything else.
    problem: StepProblem
    model: pyo.ConcreteModel
    solver: Highs

    def build(self, problem: StepProblem) -> None:
        self.problem = problem
        self.model = build_step_model(problem)
        self.solver = Highs()
        with solver_output():  # HiGHS prints its banner
            self.solver.set_instance(self.model)

    def add_second_stage(self, kind: str, served: np.ndarray) -> None:
        add_second_stage(self.model, self.problem, kind, served)

    def solve(self, highs_options: dict, start: np.ndarray | None) -> StageRun:
        ensure_threads(highs_options["threads"])
        t0 = time.perf_counter()
        # load_solutions=False: on a time limit Pyomo would load the incumbent and only warn;
        # the termination condition is checked here instead.
        res = self.solver.solve(
            self.model,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
            solver_options=dict(highs_options),
        )
        elapsed = time.perf_counter() - t0
        incumbent = res.incumbent_objective
        values = None
        if incumbent is not None:
            x = self.model.x
            primals = res.solution_loader.get_vars(list(x.values()))
            values = np.array([primals[x[k]] for k in range(self.problem.n_pairs)])
        bound = res.objective_bound
        gap = None
        if incumbent is not None and bound is not None and math.isfinite(bound):
            gap = abs(incumbent - bound) / max(abs(incumbent), 1e-300) if incumbent else 0.0
        nodes = getattr(res.extra_info, "mip_node_count", -1)
        return StageRun(
            termination=_TERMINATION.get(res.termination_condition, "error"),
            values=values,
            objective=None if incumbent is None else float(incumbent),
            dual_bound=None if bound is None else float(bound),
            mip_gap=gap,
            nodes=int(nodes),
            time_s=elapsed,
        )


def solve_pyomo(inst: Instance, options: SolveOptions | None = None) -> Decision:
    """Solve one step with HiGHS on the Pyomo model."""
    return solve_step(inst, PyomoBackend(), options or SolveOptions())
