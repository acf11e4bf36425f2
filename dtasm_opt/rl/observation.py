"""The observation: the paper's state (17), one row of seven features per user.

Each column is scaled to about [0, 1]: the four per-step volumes are divided by Table II's
upper bounds, the RAN y by H - 1, the application kind by F - 1 and the current server X by H
(H is the cloud, so a cloud user reads 1). The latency limit tau is static per user and left
out, as in the paper. Every reader of an observation uses the named columns and scales below,
never a position of its own (docs/design.md §9).
"""

from __future__ import annotations

import numpy as np

from dtasm_opt.core.generator import TABLE_II
from dtasm_opt.core.instance import Instance

# Column of each feature in a user's row.
TASK_BITS, RESULT_BITS, CONTEXT_BITS, CYCLES_PER_BIT, RAN, APP, SERVER = range(7)
N_FEATURES = 7
VOLUMES = slice(TASK_BITS, CYCLES_PER_BIT + 1)  # the four per-step volumes
VOLUME_NAMES = ("task_bits", "result_bits", "context_bits", "cycles_per_bit")
# Scales of the volumes: Table II's upper bounds, so a Table II stream lies in [0, 1].
FEATURE_SCALES = tuple(TABLE_II[name][1] for name in VOLUME_NAMES)


def ran_scale(n_servers: int) -> int:
    """The RAN column holds y / ran_scale(H)."""
    return max(n_servers - 1, 1)


def app_scale(n_apps: int) -> int:
    """The application column holds F_u / app_scale(F)."""
    return max(n_apps - 1, 1)


def server_scale(n_servers: int) -> int:
    """The server column holds X / H (the cloud, index H, reads 1)."""
    return n_servers


def observe(inst: Instance) -> np.ndarray:
    """The normalised state (17) of one step: a float32 (U, N_FEATURES) array."""
    u = inst.users
    h, f = inst.n_servers, inst.apps.n_apps
    cols = [np.empty(0)] * N_FEATURES
    for k, name in enumerate(VOLUME_NAMES):
        cols[TASK_BITS + k] = getattr(u, name) / FEATURE_SCALES[k]
    cols[RAN] = u.ran / ran_scale(h)
    cols[APP] = u.app / app_scale(f)
    cols[SERVER] = u.server / server_scale(h)
    return np.stack(cols, axis=1).astype(np.float32)
