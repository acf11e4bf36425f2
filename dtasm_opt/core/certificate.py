"""Checking a Lagrangian certificate of optimality (``dtasm-certificate/1``) independently.

A solution may carry, in ``info.certificate``, multipliers from which a lower bound on the
step's objective follows (docs/design.md §3, the step's exact optimum, and docs/design.md's
section on certificates). For each stage, with one multiplier lam[u] per user:

- ``load``: L = total load + sum_u lam[u] - sum_h KP_h, lam <= 0, over the users with at
  least one admissible pair; a lower bound on the cloud load of every plan.
- ``migrations``: with S the users that the solution serves (its final server is an ES),
  L = (users of an ES outside S) + sum_{u in S} lam[u] - sum_h KP_h; a lower bound on the
  migrations of every plan that serves exactly S (the tie-break among load-optimal plans).

KP_h is the most that ES h can take of the values (lam[u] - cost of u on h) over subsets of
its admissible users that fit it. This module computes it from the physics (its own
admissibility test, not the solvers' pair list) with its own dynamic programme: every
weight rounded down to the certificate's grid and the capacity rounded up (exact rational
arithmetic), which can only raise KP_h, so the recomputed L is a valid bound whatever the
multipliers are. A claim is accepted when the recomputed bound reaches it.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TypeGuard

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.physics import load_bits, target_physics
from dtasm_opt.core.units import BITS_PER_BYTE

CERTIFICATE_FORMAT = "dtasm-certificate/1"
MAX_GRID_CELLS = 10_000_000  # per ES: a finer grid would make checking slow, not wrong
INTEGER_SLACK = 1e-6  # a migrations bound this close above an integer proves that integer


def admissible(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """(U, H) bool: u can be admitted on h alone (C2, C3); (U, H) its required capacity."""
    h_all = np.arange(inst.n_servers)[None, :]
    phys = target_physics(inst, h_all)
    home = inst.users.server[:, None] == h_all
    ok = (
        (home | (phys.migration_s <= inst.xi_s))
        & (phys.comm_s < inst.users.latency_limit_s[:, None])
        & (phys.required_hz <= inst.servers.capacity_hz[None, :])
    )
    return ok, np.where(ok, phys.required_hz, 0.0)


def _units(hz: float, grid: float) -> int:
    return math.floor(Fraction(hz) / Fraction(grid))


def _knapsack(
    weights_hz: list[float], values: list[float], capacity_hz: float, grid: float
) -> np.ndarray:
    """table[c]: an upper bound on max sum(values) over subsets that fit in c grid units;
    table[-1] bounds the subsets with fsum(weights) <= capacity (whose exact sum may exceed
    the capacity by half an ulp: the next float up covers that)."""
    cap = _units(math.nextafter(capacity_hz, math.inf), grid)
    best = np.zeros(cap + 1)
    for w, v in zip(weights_hz, values, strict=True):
        units = _units(w, grid)
        if v <= 0 or units > cap:
            continue
        if units == 0:
            best += v
            continue
        np.maximum(best[units:], best[:-units] + v, out=best[units:])
    return best


def recompute(
    inst: Instance, stage: str, multipliers: np.ndarray, grid: float, served: np.ndarray
) -> float:
    """The certificate's bound for ``stage`` ("load" or "migrations"), recomputed."""
    ok, required = admissible(inst)
    home = inst.users.server[:, None] == np.arange(inst.n_servers)[None, :]
    if stage == "load":
        rows = ok.any(axis=1)
        lam = np.where(rows, np.minimum(multipliers, 0.0), 0.0)
        profit = load_bits(inst) / BITS_PER_BYTE
        value = lam[:, None] + profit[:, None] * np.ones(inst.n_servers)[None, :]
        const = math.fsum(profit.tolist())
    else:
        rows = served
        lam = np.where(rows, multipliers, 0.0)
        value = lam[:, None] - np.where(home, 0.0, 1.0)
        from_edge = inst.users.server != inst.cloud
        const = float(np.count_nonzero(from_edge & ~served))
    kp = []
    for h in range(inst.n_servers):
        users = np.flatnonzero(ok[:, h] & rows)
        table = _knapsack(
            required[users, h].tolist(),
            value[users, h].tolist(),
            float(inst.servers.capacity_hz[h]),
            grid,
        )
        kp.append(float(table[-1]))
    return const + math.fsum(lam[rows].tolist()) - math.fsum(kp)


def check(
    inst: Instance, doc: dict, final: np.ndarray, cloud_load: float, migrated: int
) -> list[str]:
    """Problems with ``doc["info"]["certificate"]`` (none when there is no certificate)."""
    info = doc.get("info")
    cert = info.get("certificate") if isinstance(info, dict) else None
    if cert is None:
        return []
    where = "info.certificate"
    if not isinstance(cert, dict) or cert.get("format") != CERTIFICATE_FORMAT:
        return [f"{where}: expected an object with format {CERTIFICATE_FORMAT!r}"]
    grid = cert.get("grid_hz")
    if not _number(grid) or not grid > 0 or not math.isfinite(grid):
        return [f"{where}.grid_hz: {grid!r} is not a positive number"]
    if float(inst.servers.capacity_hz.max()) / grid > MAX_GRID_CELLS:
        return [f"{where}.grid_hz: {grid!r} Hz is too fine to check (over {MAX_GRID_CELLS} cells)"]
    problems: list[str] = []
    served = final != inst.cloud
    # Loads are bytes summed in floats (totals near 1e8): allow 1e-12 of the total load.
    total = float(load_bits(inst).sum()) / BITS_PER_BYTE
    for stage, key, value in (
        ("load", "bound_bytes", cloud_load),
        ("migrations", "bound", float(migrated)),
    ):
        part = cert.get(stage)
        if part is None:
            continue
        lam = part.get("multipliers") if isinstance(part, dict) else None
        claimed = part.get(key) if isinstance(part, dict) else None
        if (
            not isinstance(lam, list)
            or len(lam) != inst.n_users
            or not all(_number(x) and math.isfinite(x) for x in lam)
        ):
            problems.append(f"{where}.{stage}.multipliers: expected {inst.n_users} finite numbers")
            continue
        if not _number(claimed) or not math.isfinite(claimed):
            problems.append(f"{where}.{stage}.{key}: {claimed!r} is not a finite number")
            continue
        bound = recompute(inst, stage, np.asarray(lam, dtype=np.float64), float(grid), served)
        tol = 1e-9 * max(abs(bound), abs(value), 1.0) + (1e-12 * total if stage == "load" else 0)
        if claimed > bound + tol:
            problems.append(
                f"{where}.{stage}.{key}: claims {claimed!r}, its multipliers give only {bound!r}"
            )
        elif claimed > value + tol:
            problems.append(
                f"{where}.{stage}.{key}: {claimed!r} exceeds the solution's own value {value!r}"
            )
        elif part.get("proves_optimal") is True and not _proves(stage, claimed, value, tol):
            problems.append(
                f"{where}.{stage}: claims to prove the solution optimal, but its bound "
                f"{claimed!r} is below the solution's {value!r}"
            )
    return problems


def _proves(stage: str, bound: float, value: float, tol: float) -> bool:
    if stage == "migrations":
        return math.ceil(bound - INTEGER_SLACK) >= value
    return bound >= value - tol


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
