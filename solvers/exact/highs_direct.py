"""HiGHS fed directly through highspy's array interface: the default MILP backend.

The model is :func:`dtasm_opt.models.step_matrix.step_matrix`, passed in one ``passModel``
call; neither Pyomo nor anything else heavy is imported on this path.
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.solution import Decision
from dtasm_opt.models.step_matrix import step_matrix
from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.highs_runtime import (
    ensure_threads,
    solver_log_on,
    solver_output,
    termination_name,
)
from dtasm_opt.solvers.exact.milp_driver import SolveOptions, StageRun, solve_step

_ROWWISE = 2  # HiGHS MatrixFormat kRowwise
_MINIMIZE = 1  # HiGHS ObjSense kMinimize
_INTEGER = 1  # HiGHS HighsVarType kInteger


class DirectBackend:
    """HiGHS through highspy's array interface."""

    name = "highs-direct"

    # Set by build(); the driver calls build() before anything else.
    problem: StepProblem
    highs: highspy.Highs

    def build(self, problem: StepProblem) -> None:
        self.problem = problem
        m = step_matrix(problem)
        k = problem.n_pairs
        with solver_output():
            h = highspy.Highs()
        h.setOptionValue("output_flag", solver_log_on())
        h.passModel(
            k,
            m["row_upper"].shape[0],
            m["a_value"].shape[0],
            _ROWWISE,
            _MINIMIZE,
            m["offset"],
            m["col_cost"],
            np.zeros(k),
            np.ones(k),
            m["row_lower"],
            m["row_upper"],
            m["a_start"],
            m["a_index"],
            m["a_value"],
            np.full(k, _INTEGER, dtype=np.int32),
        )
        self.highs = h

    def add_second_stage(self, kind: str, served: np.ndarray) -> None:
        """Stage 2: C1 as an equality for stage 1's served users, the pairs of the others at
        0 (the cloud load is exactly stage 1's), and the objective ``kind``."""
        p, h = self.problem, self.highs
        k = p.n_pairs
        user = p.pairs.user
        c1_users = np.unique(user)  # C1 row r belongs to c1_users[r]
        rows = np.flatnonzero(served[c1_users]).astype(np.int32)
        # changeRowsBounds exists in highspy 1.16 but is missing from its type stubs.
        h.changeRowsBounds(rows.size, rows, np.ones(rows.size), np.ones(rows.size))  # type: ignore[attr-defined]
        off = np.flatnonzero(~served[user]).astype(np.int32)
        h.changeColsBounds(off.size, off, np.zeros(off.size), np.zeros(off.size))
        pair_cost, cloud_cost = p.second_stage_costs(kind)
        idx = np.arange(k, dtype=np.int32)
        h.changeColsCost(k, idx, pair_cost - cloud_cost[user])
        h.changeObjectiveOffset(float(cloud_cost.sum()))

    def solve(self, highs_options: dict, start: np.ndarray | None) -> StageRun:
        h = self.highs
        h.clearSolver()  # no solution of a previous run (or a previous start) carries over
        h.resetOptions()  # nor any option (a time limit)
        h.setOptionValue("output_flag", solver_log_on())
        for key, value in highs_options.items():
            h.setOptionValue(key, value)
        if start is not None:
            k = self.problem.n_pairs
            h.setSolution(k, np.arange(k, dtype=np.int32), np.asarray(start, dtype=np.float64))
        ensure_threads(highs_options["threads"])
        t0 = time.perf_counter()
        with solver_output():  # HiGHS's log, with --solver-log
            h.run()
        elapsed = time.perf_counter() - t0
        info = h.getInfo()
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        values = np.array(h.getSolution().col_value) if has_solution else None
        return StageRun(
            termination=termination_name(h.getModelStatus()),
            values=values,
            objective=float(info.objective_function_value) if has_solution else None,
            dual_bound=float(info.mip_dual_bound),
            mip_gap=float(info.mip_gap),
            nodes=int(info.mip_node_count),
            time_s=elapsed,
        )


def solve_direct(inst: Instance, options: SolveOptions | None = None) -> Decision:
    """Solve one step with HiGHS on the directly built matrix."""
    return solve_step(inst, DirectBackend(), options or SolveOptions())
