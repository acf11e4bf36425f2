"""The paper's latency and capacity equations as pure, vectorised float64 functions.

Each function evaluates exactly the expression of docs/design.md §2, in the grouping given
there, so that threshold comparisons (downtime > xi, Prc > P) are reproducible bit for bit.
Server indices broadcast: pass ``dst`` of shape (U,) for one target per user, or
``np.arange(H)[None, :]`` for the full (U, H) matrix. Index H means the cloud.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtasm_opt.core.instance import Apps, Instance, Servers


def comm_latency_s(
    ran: np.ndarray,
    dst: np.ndarray,
    task_bits: np.ndarray,
    result_bits: np.ndarray,
    servers: Servers,
) -> np.ndarray:
    """Communication latency, eq. (9): 0 if y == h, else (Vt + Vr) / B[y, h] + 2 delta[y, h].

    ``dst`` must name ESs (0..H-1); user arrays are broadcast against it.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        far = (task_bits + result_bits) / servers.bandwidth_bps[ran, dst] + (
            2 * servers.delay_s[ran, dst]
        )
    return np.where(ran == dst, 0.0, far)


def required_capacity_hz(
    cycles_per_bit: np.ndarray,
    task_bits: np.ndarray,
    latency_limit_s: np.ndarray,
    comm_s: np.ndarray,
) -> np.ndarray:
    """Required computing capacity, eq. (12): kappa Vt / (tau - dc); +inf where dc >= tau."""
    slack = latency_limit_s - comm_s
    with np.errstate(divide="ignore", invalid="ignore"):
        prc = (cycles_per_bit * task_bits) / slack
    return np.where(comm_s >= latency_limit_s, np.inf, prc)


def suspend_s(
    context_bits: np.ndarray, app: np.ndarray, src: np.ndarray, apps: Apps, cloud: int
) -> np.ndarray:
    """SI suspend time, eq. (4): Vm rho_s / (beta Psf) of the user's kind; 0 on the cloud."""
    t = (context_bits * apps.suspend_cycles_per_bit[app]) / (
        apps.checkpoint_share[app] * apps.sf_capacity_hz[app]
    )
    return np.where(src == cloud, 0.0, t)


def resume_s(
    context_bits: np.ndarray, app: np.ndarray, dst: np.ndarray, apps: Apps, cloud: int
) -> np.ndarray:
    """SI resume time, eq. (5): Vm rho_r / (beta Psf) of the user's kind; 0 on the cloud."""
    t = (context_bits * apps.resume_cycles_per_bit[app]) / (
        apps.checkpoint_share[app] * apps.sf_capacity_hz[app]
    )
    return np.where(dst == cloud, 0.0, t)


def sync_s(
    context_bits: np.ndarray, src: np.ndarray, dst: np.ndarray, servers: Servers
) -> np.ndarray:
    """State-context synchronisation time, eq. (6), from server ``src`` to ``dst``.

    Between ESs i != j: Vm / B[i, j] + delta[i, j]; with the cloud at either end:
    Vm / Bc[i] + deltac[i] for the ES end i; 0 when src == dst.
    """
    cloud = servers.n_servers
    src_cloud, dst_cloud = src == cloud, dst == cloud
    i = np.where(src_cloud, 0, src)
    j = np.where(dst_cloud, 0, dst)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = context_bits / servers.bandwidth_bps[i, j] + servers.delay_s[i, j]
        edge = np.where(src_cloud, j, i)
        to_cloud = context_bits / servers.cloud_bandwidth_bps[edge] + servers.cloud_delay_s[edge]
    out = np.where(src_cloud | dst_cloud, to_cloud, between)
    return np.where(src == dst, 0.0, out)


def sf_active(server: np.ndarray, app: np.ndarray, n_servers: int, n_apps: int) -> np.ndarray:
    """(H, F) activation: SF f is active on ES h iff some user of kind f has s[u] == h."""
    active = np.zeros((n_servers, n_apps), dtype=bool)
    on_edge = server < n_servers
    active[server[on_edge], app[on_edge]] = True
    return active


def sf_prepare_s(app: np.ndarray, dst: np.ndarray, active: np.ndarray, apps: Apps) -> np.ndarray:
    """SF preparation time: dsf of the user's kind if that SF is inactive on ES ``dst``."""
    return np.where(active[dst, app], 0.0, apps.sf_prepare_s[app])


def migration_downtime_s(
    suspend: np.ndarray, sync: np.ndarray, prepare: np.ndarray, resume: np.ndarray
) -> np.ndarray:
    """Downtime of a migration to an ES, eq. (3): (ds + max(dsy, dsf)) + dr."""
    return (suspend + np.maximum(sync, prepare)) + resume


def failed_downtime_s(
    suspend: np.ndarray, sync_to: np.ndarray, sync_to_cloud: np.ndarray
) -> np.ndarray:
    """Downtime of a failed migration re-forwarded to the cloud, eq. (8): ds + dsy + dsy_c."""
    return suspend + sync_to + sync_to_cloud


@dataclass(frozen=True)
class TargetPhysics:
    """Every quantity of docs/design.md §2 for given targets (shape of ``dst`` broadcast)."""

    comm_s: np.ndarray  # eq. (9); only meaningful where dst is an ES
    required_hz: np.ndarray  # eq. (12)
    suspend_s: np.ndarray  # eq. (4), from the current server
    sync_s: np.ndarray  # eq. (6), current server -> dst
    sync_to_cloud_s: np.ndarray  # eq. (6), dst -> cloud
    migration_s: np.ndarray  # eq. (3) current server -> dst (only meaningful for dst != s)
    failed_s: np.ndarray  # eq. (8) current server -> dst -> cloud


def target_physics(inst: Instance, dst: np.ndarray) -> TargetPhysics:
    """Evaluate docs/design.md §2 for every user against ``dst`` (cloud entries allowed).

    ``dst`` of shape (U,) gives one value per user; ``np.arange(H)[None, :]`` gives (U, H).
    """
    u, s, apps, cloud = inst.users, inst.users.server, inst.apps, inst.cloud
    dst = np.asarray(dst)
    col = (lambda a: a[:, None]) if dst.ndim == 2 else (lambda a: a)
    es_dst = np.where(dst == cloud, 0, dst)  # cloud targets get ES 0's numbers, masked by users
    comm = comm_latency_s(col(u.ran), es_dst, col(u.task_bits), col(u.result_bits), inst.servers)
    prc = required_capacity_hz(
        col(u.cycles_per_bit), col(u.task_bits), col(u.latency_limit_s), comm
    )
    ds = suspend_s(u.context_bits, u.app, s, apps, cloud)
    sync = sync_s(col(u.context_bits), col(s), dst, inst.servers)
    sync_cloud = sync_s(col(u.context_bits), dst, np.full_like(dst, cloud), inst.servers)
    active = sf_active(s, u.app, inst.n_servers, apps.n_apps)
    prep = sf_prepare_s(col(u.app), es_dst, active, apps)
    dr = resume_s(col(u.context_bits), col(u.app), dst, apps, cloud)
    return TargetPhysics(
        comm_s=comm,
        required_hz=prc,
        suspend_s=ds,
        sync_s=sync,
        sync_to_cloud_s=sync_cloud,
        migration_s=migration_downtime_s(col(ds), sync, prep, dr),
        failed_s=failed_downtime_s(col(ds), sync, sync_cloud),
    )


def load_bits(inst: Instance) -> np.ndarray:
    """(U,) the load a user puts on the cloud when it is served there: Vt + Vr (bits)."""
    return inst.users.task_bits + inst.users.result_bits
