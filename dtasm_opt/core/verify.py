"""Independent check of a solution document against its instance (MIPLIB-style).

From the physics alone (not the simulator's rules): every user placed on an ES is admissible
there (downtime (3) <= xi unless it stayed put, dc < tau, Prc <= P: C2, C3), every ES's
admitted users fit (fsum of Prc <= P: C4), and the reported cloud load and counters match
what the final servers imply. Then the action is implemented in the simulator, whose final
servers must be the reported ones (docs/design.md §3). A Lagrangian certificate of optimality,
when the solution carries one, is recomputed from its multipliers (:mod:`.certificate`).
"""

from __future__ import annotations

import math

import numpy as np

from dtasm_opt.core import certificate, simulator
from dtasm_opt.core.checks import as_array, index_range
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.physics import load_bits, target_physics
from dtasm_opt.core.solution import SOLUTION_FORMAT
from dtasm_opt.core.units import BITS_PER_BYTE
from dtasm_opt.errors import InputError

METRICS = ("migrated", "migration_failed", "rejected", "users_on_edge")


def _vector(doc: dict, key: str, inst: Instance) -> np.ndarray:
    arr = as_array(doc.get(key), f"solution.{key}", "int", [inst.n_users])
    index_range(arr, f"solution.{key}", inst.cloud + 1)
    return arr


def check_placement(inst: Instance, final: np.ndarray) -> list[str]:
    """C2, C3, C4 for the users that end on ESs, from the physics alone."""
    problems = []
    cloud, s = inst.cloud, inst.users.server
    on_edge = np.flatnonzero(final != cloud)
    phys = target_physics(inst, final)
    for u in on_edge:
        h = int(final[u])
        if h != s[u] and not phys.migration_s[u] <= inst.xi_s:
            problems.append(
                f"user {u}: migration {s[u]}->{h} takes {phys.migration_s[u]:.6f} s "
                f"> xi = {inst.xi_s} s (C2)"
            )
        if not phys.comm_s[u] < inst.users.latency_limit_s[u]:
            problems.append(
                f"user {u}: communication latency {phys.comm_s[u]:.6f} s >= its "
                f"limit {inst.users.latency_limit_s[u]} s on ES {h} (C3)"
            )
    for h in range(inst.n_servers):
        members = on_edge[final[on_edge] == h]
        used = math.fsum(phys.required_hz[members].tolist())
        if not used <= inst.servers.capacity_hz[h]:
            problems.append(
                f"ES {h}: admitted users need {used:.6e} Hz > capacity "
                f"{inst.servers.capacity_hz[h]:.6e} Hz (C4)"
            )
    return problems


def verify(
    inst: Instance,
    doc: object,
    rtol: float = 1e-9,
    progress: certificate.Progress | None = None,
) -> list[str]:
    """Every problem found with the solution ``doc`` (a parsed dtasm-solution/1 JSON);
    ``progress(read, nodes)`` follows the check of a certificate's tree."""
    if not isinstance(doc, dict):
        raise InputError("solution: expected a JSON object")
    if doc.get("format") != SOLUTION_FORMAT:
        raise InputError(
            f"solution.format: expected {SOLUTION_FORMAT!r}, got {doc.get('format')!r}"
        )
    action = _vector(doc, "action", inst)
    final = _vector(doc, "final_server", inst)
    problems = check_placement(inst, final)
    load = float(load_bits(inst)[final == inst.cloud].sum()) / BITS_PER_BYTE
    claimed = doc.get("cloud_load_bytes")
    if not isinstance(claimed, int | float) or isinstance(claimed, bool):
        problems.append(f"cloud_load_bytes: {claimed!r} is missing or not a number")
    elif not math.isfinite(claimed):
        problems.append(f"cloud_load_bytes: {claimed!r} is not a finite number")
    elif not math.isclose(claimed, load, rel_tol=rtol, abs_tol=1e-6):
        problems.append(f"cloud_load_bytes: reported {claimed!r}, the final servers give {load!r}")
    out = simulator.apply(inst, action)
    moved = np.flatnonzero(out.final_server != final)
    if moved.size:
        u = int(moved[0])
        problems.append(
            f"final_server: implementing the action puts {moved.size} user(s) "
            f"elsewhere (user {u}: {out.final_server[u]}, reported {final[u]})"
        )
    reported = doc.get("metrics")
    metrics: dict = reported if isinstance(reported, dict) else {}
    expected = out.metrics()
    for key in METRICS:
        if key in metrics and metrics[key] != expected[key]:
            problems.append(f"metrics.{key}: reported {metrics[key]!r}, expected {expected[key]}")
    bound = doc.get("bound_bytes")
    if bound is not None:
        if not _is_number(bound) or not math.isfinite(bound):
            problems.append(f"bound_bytes: {bound!r} is not a finite number (or null)")
        elif bound > load * (1 + rtol) + 1e-6:
            problems.append(f"bound_bytes: {bound!r} exceeds the solution's cloud load {load!r}")
    migrated = int(np.count_nonzero(final != inst.users.server))
    problems += certificate.check(inst, doc, final, load, migrated, progress)
    gap = doc.get("gap")
    if gap is not None and (not _is_number(gap) or not 0 <= gap <= 1 or not math.isfinite(gap)):
        problems.append(f"gap: {gap!r} is not a number in [0, 1] (or null)")
    return problems


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
