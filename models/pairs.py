"""The (user, ES) pairs that the per-step problem can use at all (docs/design.md §3).

A pair (u, h) exists iff the simulator could admit u on h when nothing else competes for h:
h == s[u] or the migration downtime (3) is <= xi (C2), dc < tau and Prc <= P[h] (C3). Every
exact model (Pyomo, direct HiGHS, CP-SAT) is built over this one list, so they agree on
which assignments are possible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.physics import load_bits, target_physics


@dataclass(frozen=True, eq=False)
class Pairs:
    """Admissible pairs in (user, server) order, with what each pair costs and brings."""

    user: np.ndarray  # (K,) user index
    server: np.ndarray  # (K,) ES index
    required_hz: np.ndarray  # (K,) Prc[u, h]: weight in the capacity row C4
    migrates: np.ndarray  # (K,) bool: h != s[u]
    downtime_s: np.ndarray  # (K,) downtime (3) of the move, 0 when h == s[u]
    load_bits: np.ndarray  # (U,) Vt + Vr per user: served load if assigned to any ES
    cloud_downtime_s: np.ndarray  # (U,) downtime when sent to the cloud (rule 1)
    from_edge: np.ndarray  # (U,) bool: s[u] is an ES (going to the cloud is a migration)

    @property
    def n_pairs(self) -> int:
        return int(self.user.shape[0])

    def by_server(self, n_servers: int) -> list[np.ndarray]:
        """Pair indices grouped per ES (for the capacity rows)."""
        order = np.argsort(self.server, kind="stable")
        cuts = np.searchsorted(self.server[order], np.arange(1, n_servers))
        return np.split(order, cuts)

    def by_user(self, n_users: int) -> list[np.ndarray]:
        """Pair indices grouped per user (for the assignment rows C1)."""
        cuts = np.searchsorted(self.user, np.arange(1, n_users))
        return np.split(np.arange(self.n_pairs), cuts)


def admissible_pairs(inst: Instance) -> Pairs:
    """Enumerate every (u, h) that satisfies C2 and C3 on its own."""
    h_all = np.arange(inst.n_servers)[None, :]
    phys = target_physics(inst, h_all)
    s = inst.users.server[:, None]
    stays = s == h_all
    seamless = stays | (phys.migration_s <= inst.xi_s)
    in_time = phys.comm_s < inst.users.latency_limit_s[:, None]
    fits = phys.required_hz <= inst.servers.capacity_hz[None, :]
    ok = seamless & in_time & fits
    user, server = np.nonzero(ok)  # row-major: sorted by user, then server
    cloud = np.full(inst.n_users, inst.cloud)
    to_cloud = target_physics(inst, cloud)
    from_edge = inst.users.server != inst.cloud
    return Pairs(
        user=user,
        server=server,
        required_hz=phys.required_hz[user, server],
        migrates=~stays[user, server],
        downtime_s=np.where(stays[user, server], 0.0, phys.migration_s[user, server]),
        load_bits=load_bits(inst),
        cloud_downtime_s=np.where(from_edge, to_cloud.suspend_s + to_cloud.sync_s, 0.0),
        from_edge=from_edge,
    )


def action_from_assignment(inst: Instance, pairs: Pairs, chosen: np.ndarray) -> np.ndarray:
    """The action naming h for each assigned user and the cloud for the rest."""
    action = np.full(inst.n_users, inst.cloud, dtype=np.int64)
    picked = np.flatnonzero(chosen)
    action[pairs.user[picked]] = pairs.server[picked]
    return action
