"""The simulator: the single judge of any action (docs/design.md §3).

``apply(instance, action)`` implements one decision step, rules 1-6 in order, and returns the
users' final servers with every metric of the step. Nothing here is stochastic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.knapsack import max_load_subset
from dtasm_opt.core.physics import load_bits, target_physics
from dtasm_opt.core.units import BITS_PER_BYTE, BYTES_PER_MB
from dtasm_opt.errors import InputError

# Outcome codes per user, for tests and diagnostics (which rule decided the user).
STAYED_CLOUD = 0  # rule 1 or 2/5 with s == cloud: nothing happened
TO_CLOUD = 1  # rule 1: sent to the cloud on purpose
FAILED = 2  # rule 2: migration downtime > xi
REJECTED_LATENCY = 3  # rule 3: dc >= tau or Prc > P
REJECTED_CAPACITY = 4  # rule 4: not admitted by the knapsack
ADMITTED = 5  # placed on its target ES


@dataclass(frozen=True, eq=False)
class StepOutcome:
    """What implementing one action did: the new servers and the step's metrics."""

    final_server: np.ndarray  # (U,) new s[u], H = cloud
    downtime_s: np.ndarray  # (U,) service downtime per user (0 for users not migrated)
    outcome: np.ndarray  # (U,) which rule decided each user (codes above)
    cloud_load_bytes: float  # sum of Vt + Vr of users that end in the cloud, in bytes
    migrated: int  # users whose final server differs from the one before the step
    migration_failed: int  # rule 2 with s[u] an ES
    rejected: int  # candidates rejected by rules 3-4 (cloud-origin users included)
    users_on_edge: int
    total_downtime_s: float

    @property
    def mean_downtime_s(self) -> float:
        """Mean over this step's migrated users (0 when none)."""
        return self.total_downtime_s / self.migrated if self.migrated else 0.0

    @property
    def reward(self) -> float:
        """Eq. (19): minus the cloud load, in MB of 2^20 bytes."""
        return -self.cloud_load_bytes / BYTES_PER_MB

    def metrics(self) -> dict:
        return {
            "migrated": self.migrated,
            "migration_failed": self.migration_failed,
            "mean_downtime_s": self.mean_downtime_s,
            "rejected": self.rejected,
            "users_on_edge": self.users_on_edge,
        }


def check_action(inst: Instance, action: object) -> np.ndarray:
    """A valid action: U integer targets in 0..H (H = cloud)."""
    a = np.asarray(action)
    if a.shape != (inst.n_users,):
        raise InputError(f"action: length {a.shape}, expected ({inst.n_users},)")
    if a.size and (a.dtype.kind not in "iu"):
        if a.dtype.kind != "f" or not np.all(a == np.round(a)):
            raise InputError("action: expected integer server indices")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() > inst.cloud):
        raise InputError(f"action: server index out of range 0..{inst.cloud}")
    return a


def apply(inst: Instance, action: object) -> StepOutcome:
    """Implement ``action`` (targets 0..H) on ``inst`` by docs/design.md §3, rules 1-6."""
    a = check_action(inst, action)
    cloud, s = inst.cloud, inst.users.server
    phys = target_physics(inst, a)
    final = np.full(inst.n_users, cloud, dtype=np.int64)
    downtime = np.zeros(inst.n_users)
    outcome = np.full(inst.n_users, STAYED_CLOUD, dtype=np.int8)
    from_edge = s != cloud

    # Rule 1: target is the cloud.
    to_cloud = a == cloud
    moved = to_cloud & from_edge
    outcome[moved] = TO_CLOUD
    downtime[moved] = (phys.suspend_s + phys.sync_s)[moved]

    # Rule 2: a migration to another ES whose downtime (3) exceeds xi fails.
    to_edge = ~to_cloud
    migrating = to_edge & (a != s)
    failed = migrating & (phys.migration_s > inst.xi_s)
    failed_edge = failed & from_edge
    outcome[failed_edge] = FAILED
    downtime[failed_edge] = phys.failed_s[failed_edge]

    # Rule 3: remaining candidates that cannot meet the latency limit or exceed P.
    candidate = to_edge & ~failed
    capacity = inst.servers.capacity_hz[np.where(to_edge, a, 0)]
    hopeless = candidate & (
        (phys.comm_s >= inst.users.latency_limit_s) | (phys.required_hz > capacity)
    )
    outcome[hopeless] = REJECTED_LATENCY
    candidate &= ~hopeless

    # Rule 4: each ES admits a max-load subset of its candidates (the knapsack P3).
    load = load_bits(inst)
    admitted = admit(inst, a, candidate, phys.required_hz, load)
    outcome[candidate & ~admitted] = REJECTED_CAPACITY
    outcome[admitted] = ADMITTED
    final[admitted] = a[admitted]
    arrived = admitted & migrating
    downtime[arrived] = phys.migration_s[arrived]

    # Rule 5: rejected users end in the cloud; downtime per (8), or 0 from the cloud.
    rejected = (candidate & ~admitted) | hopeless
    stayed_put = rejected & (a == s)
    came_far = rejected & from_edge & (a != s)
    downtime[stayed_put] = (phys.suspend_s + phys.sync_to_cloud_s)[stayed_put]
    downtime[came_far] = phys.failed_s[came_far]

    # Rule 6: the final servers are the new state.
    migrated = final != s
    downtime[~migrated] = 0.0
    in_cloud = final == cloud
    return StepOutcome(
        final_server=final,
        downtime_s=downtime,
        outcome=outcome,
        cloud_load_bytes=float(load[in_cloud].sum()) / BITS_PER_BYTE,
        migrated=int(migrated.sum()),
        migration_failed=int(failed_edge.sum()),
        rejected=int(rejected.sum()),
        users_on_edge=int((~in_cloud).sum()),
        total_downtime_s=float(downtime[migrated].sum()),
    )


def admit(
    inst: Instance, a: np.ndarray, candidate: np.ndarray, required_hz: np.ndarray, load: np.ndarray
) -> np.ndarray:
    """Rule 4: (U,) bool, the candidates each ES admits, a max-load subset with fsum of
    their required capacities <= P[h] (exact for the real numbers; all when all fit)."""
    admitted = np.zeros(inst.n_users, dtype=bool)
    for h in np.unique(a[candidate]):
        members = np.flatnonzero(candidate & (a == h))
        keep = max_load_subset(required_hz[members], load[members], inst.servers.capacity_hz[h])
        admitted[members[keep]] = True
    return admitted


def step(inst: Instance, action: object) -> tuple[Instance, StepOutcome]:
    """Apply ``action`` and return the same step's instance with the new servers."""
    out = apply(inst, action)
    return inst.with_server(out.final_server), out
