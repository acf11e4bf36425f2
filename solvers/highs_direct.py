"""The per-step MILP of :mod:`dtasm_opt.models.step_milp` built directly as a highspy matrix.

The same model as the Pyomo builder, column for column (x[k] per admissible pair k) and row
for row (C1 per user that has a pair, C4 per ES), passed to HiGHS in one ``passModel`` call
from numpy CSR arrays: the build is a few milliseconds where Pyomo's takes a good part of a
second at (1000, 16), which matters for rollouts of thousands of steps.
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from dtasm_opt.instance import Instance
from dtasm_opt.models.step_milp import StepProblem
from dtasm_opt.solution import Decision
from dtasm_opt.solvers.milp_common import (
    SolveOptions,
    StageRun,
    ensure_threads,
    solve_step,
    stdout_to_stderr,
    termination_name,
)

_ROWWISE = 2  # HiGHS MatrixFormat kRowwise
_MINIMIZE = 1  # HiGHS ObjSense kMinimize
_INTEGER = 1  # HiGHS HighsVarType kInteger


def step_matrix(problem: StepProblem) -> dict:
    """The stage-1 model as CSR arrays: C1 rows (users with a pair), then C4 rows (all ESs)."""
    p = problem.pairs
    k = p.n_pairs
    per_user = np.bincount(p.user, minlength=problem.n_users)
    per_user = per_user[per_user > 0]  # pairs are sorted by user: C1 rows are consecutive runs
    by_server = np.argsort(p.server, kind="stable")
    per_server = np.bincount(p.server, minlength=problem.n_servers)
    n_c1 = per_user.shape[0]
    start = np.concatenate(([0], np.cumsum(per_user), k + np.cumsum(per_server)))
    return {
        "col_cost": -problem.pair_load_bytes,
        "offset": problem.total_load_bytes,
        "row_lower": np.full(n_c1 + problem.n_servers, -np.inf),
        "row_upper": np.concatenate((np.ones(n_c1), problem.model_capacity_hz)),
        "a_start": start.astype(np.int32),
        "a_index": np.concatenate((np.arange(k), by_server)).astype(np.int32),
        "a_value": np.concatenate((np.ones(k), p.required_hz[by_server])),
        "n_c1": n_c1,
    }


class DirectBackend:
    """HiGHS through highspy's array interface."""

    name = "highs-direct"

    def __init__(self) -> None:
        self.problem: StepProblem | None = None
        self.highs: highspy.Highs | None = None

    def build(self, problem: StepProblem) -> None:
        self.problem = problem
        m = step_matrix(problem)
        k = problem.n_pairs
        with stdout_to_stderr():
            h = highspy.Highs()
        h.setOptionValue("output_flag", False)
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
        h.changeRowsBounds(rows.size, rows, np.ones(rows.size), np.ones(rows.size))
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
        h.setOptionValue("output_flag", False)
        for key, value in highs_options.items():
            h.setOptionValue(key, value)
        if start is not None:
            k = self.problem.n_pairs
            h.setSolution(k, np.arange(k, dtype=np.int32), np.asarray(start, dtype=np.float64))
        ensure_threads(highs_options["threads"])
        t0 = time.perf_counter()
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
