"""The numbers of the per-step exact problem (docs/design.md §3, P1 at one step), shared by
every formulation: the Pyomo model (:mod:`.step_milp`), the direct matrix (:mod:`.step_matrix`)
and the solvers' own checks, so that they cannot disagree.

Binary x[k] for every admissible pair k = (u, h) of :func:`~.pairs.admissible_pairs`: C2
(downtime (3) <= xi, or h == s[u]) and C3 (dc < tau, Prc (12) <= P[h]) decide which pairs
exist; the rows are C1 (at most one ES per user; the cloud takes the rest) and C4 (the ES
capacity, P[h] (1 - margin)). Stage 1 minimises the cloud load sum_u (Vt + Vr)[u] / 8
(1 - sum_h x[u, h]) in bytes; the optional stage 2 keeps stage 1's served users and minimises
migrations or total downtime (see :mod:`dtasm_opt.solvers.exact.milp_driver` for why the
served set is fixed). This module needs numpy only: the direct HiGHS path never loads Pyomo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import SECOND_STAGES
from dtasm_opt.core.units import BITS_PER_BYTE
from dtasm_opt.errors import InputError
from dtasm_opt.models.pairs import Pairs, admissible_pairs

# C4's relative safety margin: the model may fill an ES only to P (1 - margin), so that the
# solver's feasibility tolerance cannot yield an assignment the simulator's exact test
# fsum(Prc) <= P would overfill. 1e-9 of 60-100 GHz is 60-100 Hz, while the slack of an optimal
# packing is typically MHz: the margin changes the optimum only if the true optimum fills an ES
# to within 1e-9 of its capacity.
CAPACITY_MARGIN = 1e-9

# docs/design.md §3: loads equal to 1e-12 relative are ties (used for HiGHS's reported gap and
# for comparing the model's objective, computed as total - served, with an exact sum).
TIE_REL = 1e-12


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
