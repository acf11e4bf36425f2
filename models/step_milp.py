"""The per-step exact problem of DESIGN section 3 (P1 at one step) as a MILP.

Binary x[k] for every admissible pair k = (u, h) of
:func:`~dtasm_opt.models.pairs.admissible_pairs`:
the seamless-migration constraint C2 (downtime (3) <= xi, or h == s[u]) and the latency
constraint C3 (dc < tau, Prc (12) <= P[h]) are not rows of the model: they decide which pairs
exist at all. The model's rows are

- C1 (one server per user, over H' = ESs + cloud): sum_h x[u, h] <= 1, the cloud takes the rest;
- C4 (ES capacity): sum_u Prc[u, h] x[u, h] <= P[h] (1 - margin).

Stage 1 minimises the cloud load sum_u (Vt + Vr)[u] / 8 (1 - sum_h x[u, h]) in bytes. The
optional stage 2 (lexicographic) keeps stage 1's set of served users, so the cloud load stays
exactly the same, and minimises migrations or total downtime over where they are served.

Why stage 2 fixes the served set rather than adding the row "cloud load <= z1 + slack": with
that row HiGHS 1.16 returned a wrong "optimal" stage 2 (2 migrations where 1 was possible,
found by the brute-force tests; correct with presolve off; the same with a slack of 1e-12,
1e-9 or 1e-6 of the total load, or a row scaled to unit coefficients). Fixing the served set
uses only 0/1 rows and is exact whenever the load-optimal served set is unique, which holds
with probability 1 for loads drawn from continuous distributions (two different sets of users
have the same summed load only by coincidence); with exactly tied sets (identical users) it
breaks the tie among stage 1's set only.

:class:`StepProblem` holds the numbers every backend (Pyomo, direct highspy) builds from, so
they cannot disagree; :func:`build_step_model` is the Pyomo model, :func:`write_model` writes it
as LP or MPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyomo.environ as pyo

from dtasm_opt.errors import InputError
from dtasm_opt.instance import Instance
from dtasm_opt.models.pairs import Pairs, admissible_pairs
from dtasm_opt.simulator import BITS_PER_BYTE

# C4's relative safety margin: the model may fill an ES only to P (1 - margin), so that the
# solver's feasibility tolerance cannot yield an assignment the simulator's exact test
# fsum(Prc) <= P would overfill. 1e-9 of 60-100 GHz is 60-100 Hz, while the slack of an optimal
# packing is typically MHz: the margin changes the optimum only if the true optimum fills an ES
# to within 1e-9 of its capacity.
CAPACITY_MARGIN = 1e-9

# DESIGN section 3: loads equal to 1e-12 relative are ties (used for HiGHS's reported gap and
# for comparing the model's objective, computed as total - served, with an exact sum).
TIE_REL = 1e-12

SECOND_STAGES = ("migrations", "downtime", "none")


@dataclass(frozen=True, eq=False)
class StepProblem:
    """The numbers of the per-step MILP, shared by every backend."""

    pairs: Pairs
    n_users: int
    n_servers: int
    load_bytes: np.ndarray  # (U,) (Vt + Vr) / 8: cloud load if the user ends in the cloud
    capacity_hz: np.ndarray  # (H,) the real capacities P[h]
    margin: float

    @property
    def n_pairs(self) -> int:
        return self.pairs.n_pairs

    @property
    def total_load_bytes(self) -> float:
        """The cloud load with nobody on an ES: the objective's constant."""
        return math.fsum(self.load_bytes)

    @property
    def pair_load_bytes(self) -> np.ndarray:
        """(K,) load that pair k takes off the cloud (minus its stage-1 objective coefficient)."""
        return self.load_bytes[self.pairs.user]

    @property
    def model_capacity_hz(self) -> np.ndarray:
        """(H,) right-hand side of C4: P[h] (1 - margin)."""
        return self.capacity_hz * (1.0 - self.margin)

    @property
    def forced_cloud_bytes(self) -> float:
        """Load of users without any admissible pair: a trivial lower bound on the cloud load."""
        has_pair = np.zeros(self.n_users, dtype=bool)
        has_pair[self.pairs.user] = True
        return float(self.load_bytes[~has_pair].sum())

    def cloud_load_bytes(self, chosen: np.ndarray) -> float:
        """Cloud load of an assignment, summed as the simulator sums it."""
        return float(self.pairs.load_bits[~self.served(chosen)].sum()) / BITS_PER_BYTE

    def second_stage_costs(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(pair cost (K,), cloud cost (U,)) of stage 2: its objective is
        sum_k pair_cost[k] x[k] + sum_u cloud_cost[u] (1 - sum_h x[u, h])."""
        p = self.pairs
        if kind == "migrations":
            # A pair migrates iff h != s[u]; a user of an ES that ends in the cloud migrates too.
            return p.migrates.astype(np.float64), p.from_edge.astype(np.float64)
        if kind == "downtime":
            return p.downtime_s.astype(np.float64), p.cloud_downtime_s.astype(np.float64)
        raise InputError(f"second_stage: {kind!r} is unknown, use one of {SECOND_STAGES}")

    def second_stage_value(self, kind: str, chosen: np.ndarray) -> float:
        """Stage 2's objective for an assignment."""
        pair_cost, cloud_cost = self.second_stage_costs(kind)
        return float(pair_cost[chosen].sum() + cloud_cost[~self.served(chosen)].sum())

    def served(self, chosen: np.ndarray) -> np.ndarray:
        """(U,) bool: the users an assignment places on some ES."""
        served = np.zeros(self.n_users, dtype=bool)
        served[self.pairs.user[chosen]] = True
        return served

    def same_load(self, a: float, b: float) -> bool:
        """Two cloud loads agree to 1e-9 relative. The model's objective is computed as
        total - served, whose float error is of order 1e-16 x total; that absolute part is
        allowed on top (it matters only for loads near 0)."""
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0) + TIE_REL * self.total_load_bytes

    def fits(self, chosen: np.ndarray) -> np.ndarray:
        """(H,) bool: the simulator's exact test fsum(Prc) <= P[h] for the assigned users."""
        ok = np.ones(self.n_servers, dtype=bool)
        for h in np.unique(self.pairs.server[chosen]):
            on_h = chosen & (self.pairs.server == h)
            ok[h] = math.fsum(self.pairs.required_hz[on_h]) <= self.capacity_hz[h]
        return ok


def step_problem(inst: Instance, margin: float = CAPACITY_MARGIN) -> StepProblem:
    """The MILP's numbers for one instance (pairs by C2/C3, loads in bytes, capacities)."""
    if not (0.0 <= margin < 1.0):
        raise InputError(f"margin: {margin} is invalid, must be in [0, 1)")
    pairs = admissible_pairs(inst)
    return StepProblem(
        pairs=pairs,
        n_users=inst.n_users,
        n_servers=inst.n_servers,
        load_bytes=pairs.load_bits / BITS_PER_BYTE,
        capacity_hz=inst.servers.capacity_hz,
        margin=float(margin),
    )


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
    model.write(str(path), format=fmt, io_options={"symbolic_solver_labels": True})
    return path
