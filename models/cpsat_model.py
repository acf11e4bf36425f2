"""CP-SAT models of the per-step GAP (docs/design.md §3) and of one ES's knapsack (P3).

CP-SAT is an integer solver, so the real numbers are scaled to integers here, once, with a
direction of rounding chosen per use:

* Weights Prc (Hz) are counted in units of ``HZ_PER_UNIT`` = 1 kHz.
  - ``CONSERVATIVE``: W = ceil(Prc / q), C = floor(P / q). If a set has sum(W) <= C, then
    sum(Prc) <= q sum(W) <= q C <= P exactly, so the correctly rounded ``math.fsum`` of its
    Prc is <= P as well (rounding to nearest is monotone and P is a float): every solution of
    the conservative model fits in the simulator (C4, docs/design.md §2), and no ES ever rejects
    a user that the model assigned to it.
  - ``RELAXED``: W = floor(Prc / q), C = floor(P / q) + 1. A set that fits for real has
    fsum(Prc) <= P, so its exact sum is at most P + ulp(P)/2 <= P + q/2 (checked: ulp(P) <= q);
    then sum(W) <= sum(Prc)/q <= P/q + 1/2, and since sum(W) is an integer, sum(W) <=
    floor(P/q) + 1 = C. Every real solution is a relaxed solution, so the relaxed model's upper
    bound on the served load is valid for the real problem.
  The field notes (CP-SAT section) measured wrong "OPTIMAL" answers with coefficients near
  1e10 (Hz; OR-Tools issue 5293); in kHz the weights are about 1e6 and capacities about 1e8.
* Loads Vt + Vr (bits) are counted in units of ``BITS_PER_LOAD_UNIT`` = 1 bit, rounded UP in
  both models: c = ceil(L). The served load of any set is then <= its objective in units, so
  the relaxed model's bound stays an upper bound on the real served load. The rounding changes
  a set's objective by less than 1 bit per served user (users carry 4e6-8.6e6 bits), which is
  the tolerance of "optimal" and of "load-optimal" in the second stage (solvers/cpsat.py).

Every scaled number is computed exactly: the float quotient is corrected by one unit where
the product with q (exact in float64 below 2^53) shows that it rounded the wrong way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from dtasm_opt.core.instance import Instance
from dtasm_opt.errors import InputError
from dtasm_opt.models.pairs import Pairs

HZ_PER_UNIT = 1000.0  # q: CP-SAT weight unit for Prc and P (1 kHz), like RL4CO's scaling factor
BITS_PER_LOAD_UNIT = 1.0  # objective unit for Vt + Vr (1 bit)
CONSERVATIVE = "conservative"  # weights up, capacities down: solutions are real-feasible
RELAXED = "relaxed"  # weights down, capacities up: bounds are valid for the real problem
ROUNDINGS = (CONSERVATIVE, RELAXED)
_EXACT_LIMIT = 2.0**52  # integers and their products with q stay exact in float64 below this


def _scaled(values: np.ndarray, unit: float, up: bool, field: str) -> np.ndarray:
    """ceil (``up``) or floor of values / unit as exact int64 (values finite and >= 0)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size and not (np.all(np.isfinite(v)) and v.min() >= 0):
        raise InputError(f"{field}: values must be finite and >= 0")
    if v.size and v.max() >= _EXACT_LIMIT:
        raise InputError(f"{field}: {v.max():g} is too large for CP-SAT's integer scaling")
    q = v / unit
    n = np.ceil(q) if up else np.floor(q)
    if up:  # smallest n with n * unit >= v
        n = np.where(n * unit < v, n + 1, n)
        n = np.where((n - 1) * unit >= v, n - 1, n)
    else:  # largest n with n * unit <= v
        n = np.where(n * unit > v, n - 1, n)
        n = np.where((n + 1) * unit <= v, n + 1, n)
    return n.astype(np.int64)


def scale_weights(weights_hz: np.ndarray, rounding: str) -> np.ndarray:
    """Integer weights in units of HZ_PER_UNIT: up (conservative) or down (relaxed)."""
    _check_rounding(rounding)
    return _scaled(weights_hz, HZ_PER_UNIT, rounding == CONSERVATIVE, "required_hz")


def scale_capacity(capacity_hz: np.ndarray, rounding: str) -> np.ndarray:
    """Integer capacities: floor(P/q) (conservative) or floor(P/q) + 1 (relaxed)."""
    _check_rounding(rounding)
    cap = _scaled(capacity_hz, HZ_PER_UNIT, False, "capacity_hz")
    if rounding == RELAXED:
        # The relaxed argument needs ulp(P) <= q, true far beyond Table II (P < 2^52 here).
        cap = cap + 1
    return cap


def scale_loads(load_bits: np.ndarray) -> np.ndarray:
    """Objective coefficients: ceil(L / BITS_PER_LOAD_UNIT), >= the real load."""
    return _scaled(load_bits, BITS_PER_LOAD_UNIT, True, "load_bits")


def _check_rounding(rounding: str) -> None:
    if rounding not in ROUNDINGS:
        raise InputError(f"rounding: {rounding!r} is unknown, use one of {ROUNDINGS}")


def _capacity_row(
    model: cp_model.CpModel, xs: list, weights: np.ndarray, cap: int, name: str
) -> None:
    """sum(W x) <= C, skipped when it cannot bind (also keeps huge C out of the model)."""
    if int(weights.sum()) <= cap:
        return
    model.add(cp_model.LinearExpr.weighted_sum(xs, weights.tolist()) <= cap).with_name(name)


@dataclass(frozen=True, eq=False)
class StepModel:
    """The per-step GAP in CP-SAT: one Boolean per admissible pair (models/pairs.py)."""

    model: cp_model.CpModel
    x: list  # (K,) cp_model Boolean vars, pair order
    rounding: str
    load_units: np.ndarray  # (K,) objective coefficient of each pair: ceil(Vt + Vr) of its user
    served: cp_model.LinearExpr  # served load in units: the stage-1 objective (maximised)
    migration_coef: np.ndarray  # (K,) int: migrations = constant + sum(coef x)
    migration_const: int  # users on an ES before the step (each migrates if sent to the cloud)

    def migrations(self) -> cp_model.LinearExpr:
        """Migrated users as a linear expression (docs/design.md §3's metric)."""
        return cp_model.LinearExpr.weighted_sum(self.x, self.migration_coef.tolist())


def build_step_model(inst: Instance, pairs: Pairs, rounding: str) -> StepModel:
    """C1: each user on at most one ES (the cloud takes the rest); C4: one capacity row per
    ES with scaled weights; C2 and C3 are in the pair set. Objective: maximise served load."""
    model = cp_model.CpModel()
    k = pairs.n_pairs
    x = [model.new_bool_var(f"x[{u},{h}]") for u, h in zip(pairs.user, pairs.server, strict=True)]
    for u, idx in enumerate(pairs.by_user(inst.n_users)):
        if len(idx) > 1:
            model.add_at_most_one([x[i] for i in idx]).with_name(f"C1[{u}]")
    weights = scale_weights(pairs.required_hz, rounding)
    caps = scale_capacity(inst.servers.capacity_hz, rounding)
    for h, idx in enumerate(pairs.by_server(inst.n_servers)):
        if len(idx):
            _capacity_row(model, [x[i] for i in idx], weights[idx], int(caps[h]), f"C4[{h}]")
    load_units = scale_loads(pairs.load_bits)[pairs.user] if k else np.zeros(0, np.int64)
    served = cp_model.LinearExpr.weighted_sum(x, load_units.tolist())
    model.maximize(served)
    # A pair costs a migration iff h != s[u]; leaving an ES for the cloud costs one as well,
    # so each pair of an edge-origin user saves the one it would cost in the cloud.
    coef = pairs.migrates.astype(np.int64) - pairs.from_edge[pairs.user].astype(np.int64)
    return StepModel(
        model=model,
        x=x,
        rounding=rounding,
        load_units=load_units,
        served=served,
        migration_coef=coef,
        migration_const=int(pairs.from_edge.sum()),
    )


@dataclass(frozen=True, eq=False)
class KnapsackModel:
    """One ES's admission P3: maximise served load subject to one capacity row."""

    model: cp_model.CpModel
    x: list
    value_units: np.ndarray


def build_knapsack_model(
    weights_hz: np.ndarray, values_bits: np.ndarray, capacity_hz: float, rounding: str
) -> KnapsackModel:
    """Items with Prc ``weights_hz`` and loads ``values_bits`` on an ES of ``capacity_hz``."""
    w = np.asarray(weights_hz, dtype=np.float64)
    v = np.asarray(values_bits, dtype=np.float64)
    if w.ndim != 1 or v.shape != w.shape:
        raise InputError(f"values: shape {v.shape} does not match weights_hz {w.shape}")
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x[{i}]") for i in range(len(w))]
    weights = scale_weights(w, rounding)
    cap = int(scale_capacity(np.array([capacity_hz], dtype=np.float64), rounding)[0])
    _capacity_row(model, x, weights, cap, "C4")
    value_units = scale_loads(v)
    model.maximize(cp_model.LinearExpr.weighted_sum(x, value_units.tolist()))
    return KnapsackModel(model=model, x=x, value_units=value_units)
