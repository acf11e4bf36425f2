"""Action helpers shared by the environment and the agents (docs/design.md §3, §7)."""

from __future__ import annotations

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.physics import target_physics
from dtasm_opt.errors import InputError


def scores_to_action(scores: np.ndarray, n_users: int, n_servers: int) -> np.ndarray:
    """The implemented action: per-user argmax of the U x H scores (ties: the lowest ES)."""
    a = np.asarray(scores, dtype=np.float64)
    if a.size != n_users * n_servers or not np.all(np.isfinite(a)):
        raise InputError(f"action: expected {n_users} x {n_servers} finite scores")
    return np.argmax(a.reshape(n_users, n_servers), axis=1)


def feasible_targets(inst: Instance) -> np.ndarray:
    """(U, H) bool: ESs a user can be sent to without a failed migration (rule 2 of §3).

    True for the user's current ES and for every ES whose downtime (3) from the current server
    is <= xi, evaluated exactly as the simulator does. A user with no such ES (a cloud user far
    from every ES) gets an all-True row, so every row leaves at least one choice. This is the
    knowledge DANearest uses; it is an agent option, not part of the paper's MDP.
    """
    h = inst.n_servers
    es = np.arange(h)[None, :]
    phys = target_physics(inst, es)
    ok = (es == inst.users.server[:, None]) | (phys.migration_s <= inst.xi_s)
    ok[~ok.any(axis=1)] = True
    return ok


def home_targets(inst: Instance) -> np.ndarray:
    """Each user's home ES: its current ES, or its RAN's ES if it is in the cloud."""
    s = inst.users.server
    return np.where(s == inst.cloud, inst.users.ran, s)
