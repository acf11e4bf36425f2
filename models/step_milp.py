"""The per-step MILP of :mod:`.step_problem` as a Pyomo model (the reference formulation).

Readable, writable as LP or MPS (``solve --write-model``) and cross-checked against the
direct matrix build (:mod:`.step_matrix`), column for column and row for row. Built from small
steps named after the paper: variables, C1, C4, the cloud-load objective (stage 1) and the
optional stage 2, which keeps stage 1's served users and minimises migrations or downtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyomo.environ as pyo

from dtasm_opt.core.instance import Instance
from dtasm_opt.errors import InputError
from dtasm_opt.models.step_problem import CAPACITY_MARGIN, StepProblem, step_problem


def build_step_model(problem: StepProblem) -> pyo.ConcreteModel:
    """The stage-1 Pyomo model: x binary per admissible pair, C1, C4, objective cloud_load."""
    m = pyo.ConcreteModel(name="dtasm_step")
    _define_variables(m, problem)
    _define_c1(m, problem)
    _define_c4(m, problem)
    _define_cloud_load(m, problem)
    return m


def _define_variables(m: pyo.ConcreteModel, problem: StepProblem) -> None:
    """x[k] = 1 iff user pairs.user[k] is placed on ES pairs.server[k] (pairs obey C2, C3)."""
    m.K = pyo.RangeSet(0, problem.n_pairs - 1)
    m.x = pyo.Var(m.K, within=pyo.Binary)


def _define_c1(m: pyo.ConcreteModel, problem: StepProblem) -> None:
    """C1 over H': each user is on at most one ES; the cloud takes the rest."""
    groups = {u: g.tolist() for u, g in enumerate(problem.pairs.by_user(problem.n_users)) if len(g)}
    m.U = pyo.Set(initialize=sorted(groups))
    m.C1 = pyo.Constraint(m.U, rule=lambda m, u: sum(m.x[k] for k in groups[u]) <= 1)


def _define_c4(m: pyo.ConcreteModel, problem: StepProblem) -> None:
    """C4: the required capacity (12) of an ES's users fits P[h] (1 - margin)."""
    prc = problem.pairs.required_hz.tolist()
    rhs = problem.model_capacity_hz.tolist()
    groups = {
        h: g.tolist() for h, g in enumerate(problem.pairs.by_server(problem.n_servers)) if len(g)
    }
    m.H = pyo.Set(initialize=sorted(groups))
    m.C4 = pyo.Constraint(m.H, rule=lambda m, h: sum(prc[k] * m.x[k] for k in groups[h]) <= rhs[h])


def _define_cloud_load(m: pyo.ConcreteModel, problem: StepProblem) -> None:
    """Stage 1 (P1 at one step): the cloud load in bytes, total - served."""
    load = problem.pair_load_bytes.tolist()
    served = sum(load[k] * m.x[k] for k in range(problem.n_pairs))
    m.cloud_load = pyo.Objective(expr=problem.total_load_bytes - served, sense=pyo.minimize)


def add_second_stage(
    m: pyo.ConcreteModel, problem: StepProblem, kind: str, served: np.ndarray
) -> None:
    """Stage 2: keep stage 1's served users (``served``, (U,) bool) and minimise ``kind``.

    Adds ``stage1_served[u]``: sum_h x[u, h] == 1 for every served user, fixes the pairs of the
    others at 0 (so the cloud load is exactly stage 1's), adds the objective ``second`` and
    deactivates ``cloud_load``.
    """
    pair_cost, cloud_cost = problem.second_stage_costs(kind)
    user = problem.pairs.user
    groups = problem.pairs.by_user(problem.n_users)
    keep = [u for u in range(problem.n_users) if served[u] and len(groups[u])]
    m.stage1_served = pyo.Constraint(
        keep, rule=lambda m, u: sum(m.x[k] for k in groups[u].tolist()) == 1
    )
    for k in np.flatnonzero(~served[user]).tolist():
        m.x[k].fix(0)
    # sum_u d_u (1 - sum_h x) = sum_u d_u - sum_k d_{u(k)} x[k]
    coef = (pair_cost - cloud_cost[user]).tolist()
    m.cloud_load.deactivate()
    m.second = pyo.Objective(
        expr=float(cloud_cost.sum()) + sum(coef[k] * m.x[k] for k in range(problem.n_pairs)),
        sense=pyo.minimize,
    )


WRITE_FORMATS = {".lp": "lp", ".mps": "mps"}


def write_model(inst: Instance, path: str | Path, margin: float = CAPACITY_MARGIN) -> Path:
    """Write the stage-1 model of ``inst`` as LP or MPS, chosen by the file's suffix."""
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"write-model: {str(path)!r} must end in .lp or .mps")
    model = build_step_model(step_problem(inst, margin))
    # Names from the model (x[3], C1[0], C4[2]) make the file readable next to this module.
    # The format follows from the suffix (Pyomo warns, on stdout, when it is also given).
    model.write(str(path), io_options={"symbolic_solver_labels": True})
    return path
