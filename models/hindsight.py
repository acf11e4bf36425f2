"""A certified hindsight lower bound on the total cloud load that ANY policy reaches on a stream.

The model knows the whole stream in advance and relaxes the simulator (docs/design.md §3), so
that the trajectory of every action sequence is feasible in it; its optimum (or any proven
dual bound of it) is then <= the realised total cloud load of every method.

Variables: occupancy x[t, u, h] in [0, 1] (binary in the MILP) for h in 0..H (H = cloud): the
server user u is on after step t. Constraints, per step t of a window:

- C1: sum_h x[t, u, h] = 1 (every SI is somewhere; the cloud takes the rest).
- C3: x[t, u, h] = 0 (no column) where dc >= tau or Prc > P[h] (eqs. (9), (12)) at step t:
  the simulator rejects such a candidate (rule 3), whatever its origin.
- C4: sum_u Prc[t, u, h] x[t, u, h] <= P[h] (1 + CAPACITY_MARGIN): the admitted set of rule 4
  has fsum(Prc) <= P[h]; relaxing P slightly UP keeps every such set feasible despite rounding.
- C2 (linking): for ES h, x[t, u, h] <= sum_{i in Pred(t, u, h)} x[t-1, u, i], where
  Pred holds h itself (staying needs no migration) and every i in 0..H whose migration
  downtime (3) to h at step t, with the context size Vm of step t and the SF preparation time
  relaxed to 0, is <= xi. From the cloud, ds = 0 and the sync is cloud -> h (eqs. (4)-(6)).
  Validity: in an integer trajectory with x[t, u, h] = 1, the user ended on ES h, so it was
  admitted there (rules 3-4) and either it was on h before (i = h) or its migration from i did
  not fail (rule 2): downtime (ds + max(sync, dsf)) + dr <= xi. Since dsf >= 0 and IEEE
  addition is monotone, the relaxed (ds + sync) + dr computed by the same physics functions is
  no larger, so i is in Pred and the right-hand side is 1. Moves to the cloud need no row:
  rules 1, 2 and 5 put a user in the cloud from anywhere, whatever the downtime.
- The state before the window's first step is the stream's initial servers (window at step
  0) or FREE (any server: a relaxation, hence still valid). Optional ``lookback`` steps before
  the window are modelled with no cost and a free state before them; they only tighten.

Objective: minimise sum over counted steps and users of (Vt + Vr) / 8 x[t, u, H] (bytes).

Certification: the reported LP value (computed by :mod:`dtasm_opt.solvers.exact.hindsight_bound`,
which solves this model with HiGHS) is not HiGHS's objective but a Lagrangian bound
L(y) = sum_r y_r b_r + sum_j min_{x_j in [l_j, u_j]} (c_j - A_j^T y) x_j evaluated by us from
HiGHS's row duals y (signs clipped to the valid side). It is a lower bound on the LP optimum for
ANY y, so solver tolerances, an early stop or an inexact interior-point answer can only make it
weaker, never invalid; a relative margin covers our own rounding. A MILP window reports
max(that LP bound, HiGHS's MIP dual bound minus MIP_REL_MARGIN relative). Every window also
subtracts ABS_MARGIN_BYTES. Windows are solved independently; only their sum is a bound on a
stream (per-step values inside a window are not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dtasm_opt.core.physics import (
    comm_latency_s,
    migration_downtime_s,
    required_capacity_hz,
    resume_s,
    suspend_s,
    sync_s,
)
from dtasm_opt.core.stream import Stream
from dtasm_opt.core.units import BITS_PER_BYTE
from dtasm_opt.errors import InputError

CAPACITY_MARGIN = 1e-9  # C4's right-hand side is P (1 + margin): covers fsum's last-bit rounding
DUAL_REL_MARGIN = 1e-9  # our own float evaluation of L(y), relative to the sum of |terms|
COST_UNIT_BYTES = float(2**20)  # objective in MB (exact power of two): costs of order 1
MIP_REL_MARGIN = 1e-6  # HiGHS's MIP dual bound is computed under its feasibility tolerances
ABS_MARGIN_BYTES = 1.0  # subtracted from every window's bound


@dataclass(frozen=True, eq=False)
class StepData:
    """The exogenous quantities of one stream step that the model needs."""

    load_bytes: np.ndarray  # (U,) (Vt + Vr) / 8: the cloud load of a user in the cloud
    required_hz: np.ndarray  # (U, H) Prc, eq. (12)
    admissible: np.ndarray  # (U, H) C3: dc < tau and Prc <= P[h] (rule 3 does not reject)
    seamless: np.ndarray  # (U, H+1, H) relaxed C2: server i (H = cloud) -> ES h allowed


def _col(a: np.ndarray) -> np.ndarray:
    return a[:, None]


def step_data(stream: Stream, t: int) -> StepData:
    """Physics of step ``t`` against every ES, with the same functions as the simulator."""
    sv, apps = stream.servers, stream.apps
    n_es = sv.n_servers
    vt, vr, vm = stream.task_bits[t], stream.result_bits[t], stream.context_bits[t]
    tau = stream.latency_limit_s
    es = np.arange(n_es)[None, :]
    comm = comm_latency_s(_col(stream.ran[t]), es, _col(vt), _col(vr), sv)
    prc = required_capacity_hz(_col(stream.cycles_per_bit[t]), _col(vt), _col(tau), comm)
    # The negation of rule 3's test, so that the comparison is the simulator's exactly.
    admissible = ~((comm >= _col(tau)) | (prc > sv.capacity_hz[None, :]))
    src = np.arange(n_es + 1)[None, :, None]  # 0..H, H = cloud
    dst = np.arange(n_es)[None, None, :]
    vm3, app3 = vm[:, None, None], stream.app[:, None, None]
    ds = suspend_s(vm3, app3, src, apps, n_es)  # eq. (4); 0 from the cloud
    dsy = sync_s(vm3, src, dst, sv)  # eq. (6), cloud -> h via Bc[h], deltac[h]
    dr = resume_s(vm3, app3, dst, apps, n_es)  # eq. (5)
    down = migration_downtime_s(ds, dsy, np.zeros(()), dr)  # eq. (3) with dsf relaxed to 0
    seamless = (src == dst) | ~(down > stream.xi_s)  # rule 2 fails iff downtime > xi
    load = (vt + vr) / BITS_PER_BYTE
    return StepData(load, prc, admissible, seamless)


@dataclass(frozen=True, eq=False)
class WindowModel:
    """One window's LP as CSR arrays; column j is x[col_step[j], col_user[j], col_server[j]]."""

    start: int  # first counted stream step
    steps: int  # counted steps
    lookback: int  # uncounted steps modelled before ``start``
    col_step: np.ndarray  # (K,) model step 0..lookback+steps-1
    col_user: np.ndarray  # (K,)
    col_server: np.ndarray  # (K,) 0..H, H = cloud
    col_cost: np.ndarray  # (K,) in units of COST_UNIT_BYTES
    row_lower: np.ndarray  # (R,)
    row_upper: np.ndarray  # (R,)
    a_start: np.ndarray  # (R+1,) int32
    a_index: np.ndarray  # (NZ,) int32
    a_value: np.ndarray  # (NZ,)

    @property
    def n_cols(self) -> int:
        return int(self.col_cost.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.row_lower.shape[0])


def build_window(
    stream: Stream,
    start: int,
    steps: int,
    *,
    initial_server: np.ndarray | None = None,
    lookback: int = 0,
    margin: float = CAPACITY_MARGIN,
) -> WindowModel:
    """The model of stream steps [start, start + steps), after ``lookback`` free steps.

    ``initial_server`` fixes the servers before the first modelled step (the stream's initial
    servers for a window at step 0); None leaves them free.
    """
    if not (0 <= start and steps >= 1 and start + steps <= stream.n_steps):
        raise InputError(f"window: steps [{start}, {start + steps}) outside the stream")
    if lookback < 0:
        raise InputError(f"lookback: {lookback} is invalid, must be >= 0")
    first = max(0, start - lookback)
    if initial_server is not None and lookback and first != start:
        raise InputError("lookback: a window with fixed initial servers has no lookback")
    data = [step_data(stream, t) for t in range(first, start + steps)]
    exists = _columns(data, stream.n_servers, initial_server)
    col_step, col_user, col_server = np.nonzero(exists)
    counted = col_step >= start - first
    loads = np.stack([d.load_bytes for d in data]) / COST_UNIT_BYTES
    is_cloud = col_server == stream.n_servers
    col_cost = np.where(is_cloud & counted, loads[col_step, col_user], 0.0)

    rows = _Rows()
    # C1: one row per (step, user).
    n_c1 = len(data) * stream.n_users
    rows.add(col_step * stream.n_users + col_user, np.arange(col_step.size),
             np.ones(col_step.size), np.ones(n_c1), np.ones(n_c1))  # fmt: skip
    _capacity_rows(rows, stream, data, (col_step, col_user, col_server), margin)
    _linking_rows(rows, data, exists, stream.n_servers)
    a_start, a_index, a_value = rows.csr()
    return WindowModel(
        start=start,
        steps=steps,
        lookback=start - first,
        col_step=col_step,
        col_user=col_user,
        col_server=col_server,
        col_cost=col_cost,
        row_lower=np.concatenate(rows.lower),
        row_upper=np.concatenate(rows.upper),
        a_start=a_start,
        a_index=a_index,
        a_value=a_value,
    )


def _columns(data: list[StepData], n_h: int, initial_server: np.ndarray | None) -> np.ndarray:
    """(T, U, H+1) bool: the columns that exist. ES entries that are C3-admissible and
    reachable under the linking rule from some earlier column; every cloud entry."""
    n_u = data[0].load_bytes.shape[0]
    exists = np.ones((len(data), n_u, n_h + 1), dtype=bool)
    for w, d in enumerate(data):
        exists[w, :, :n_h] = d.admissible
        if w == 0 and initial_server is not None:
            exists[0, :, :n_h] &= d.seamless[np.arange(n_u), np.asarray(initial_server)]
        elif w > 0:
            exists[w, :, :n_h] &= (exists[w - 1][:, :, None] & d.seamless).any(axis=1)
    return exists


class _Rows:
    """Rows collected as COO triplets, numbered in the order they are added."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.n_rows = 0

    def add(self, r, c, v, lo, up) -> None:
        """Rows ``r`` (numbered from 0 within this call) with entries (r, c, v) and bounds."""
        self.rows.append(np.asarray(r) + self.n_rows)
        self.cols.append(np.asarray(c))
        self.vals.append(np.asarray(v, dtype=float))
        self.lower.append(np.asarray(lo, dtype=float))
        self.upper.append(np.asarray(up, dtype=float))
        self.n_rows += len(lo)

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, index, value) of the row-wise matrix, int32 indices for HiGHS."""
        row_all, col_all, val_all = (np.concatenate(a) for a in (self.rows, self.cols, self.vals))
        order = np.argsort(row_all, kind="stable")
        start = np.concatenate(([0], np.cumsum(np.bincount(row_all, minlength=self.n_rows))))
        return start.astype(np.int32), col_all[order].astype(np.int32), val_all[order]


def _capacity_rows(
    rows: _Rows, stream: Stream, data: list[StepData], columns: tuple, margin: float
) -> None:
    """C4: one row per (step, ES), divided by P[h] so that every row is of order 1 (HiGHS
    warns of bad scaling otherwise). Each quotient is off by <= 2^-53 relative: the margin
    covers it."""
    col_step, col_user, col_server = columns
    n_h = stream.n_servers
    es = np.flatnonzero(col_server < n_h)
    prc = np.stack([d.required_hz for d in data])[col_step[es], col_user[es], col_server[es]]
    p_hz = stream.servers.capacity_hz[col_server[es]]
    share = prc / np.where(p_hz > 0, p_hz, 1.0)  # P = 0 admits only Prc = 0 (C3): share 0
    cap = np.full(len(data) * n_h, 1.0 + margin)
    rows.add(col_step[es] * n_h + col_server[es], es, share, np.full(cap.size, -np.inf), cap)


def _linking_rows(rows: _Rows, data: list[StepData], exists: np.ndarray, n_h: int) -> None:
    """C2 linking: x[w, u, h] - sum_{i in Pred} x[w-1, u, i] <= 0, skipped where every
    existing predecessor column is in Pred (then the row says x <= 1)."""
    col_id = np.full(exists.shape, -1, dtype=np.int64)
    col_id[exists] = np.arange(int(exists.sum()))
    for w in range(1, len(data)):
        prev = exists[w - 1][:, :, None]  # (U, H+1, 1)
        pred = prev & data[w].seamless  # (U, H+1, H)
        need = exists[w, :, :n_h] & (pred != prev).any(axis=1)  # (U, H)
        u_idx, h_idx = np.nonzero(need)
        if u_idx.size == 0:
            continue
        r = np.arange(u_idx.size)
        pr_rows, pr_i = np.nonzero(pred[u_idx, :, h_idx])  # (row, predecessor server i)
        rows.add(
            np.concatenate((r, pr_rows)),
            np.concatenate((col_id[w, u_idx, h_idx], col_id[w - 1, u_idx[pr_rows], pr_i])),
            np.concatenate((np.ones(r.size), -np.ones(pr_rows.size))),
            np.full(r.size, -np.inf),
            np.zeros(r.size),
        )


def lagrangian_bound(model: WindowModel, row_dual: np.ndarray) -> float:
    """L(y) in bytes: a lower bound on the LP optimum for ANY row multipliers y, less margins.

    For a row with y_r > 0 the valid side is A_r x >= row_lower, for y_r < 0 it is
    A_r x <= row_upper; a sign whose side is infinite is clipped to 0. Columns are boxed in
    [0, 1], so min over the box of (c - A^T y)_j x_j is min(0, c_j - (A^T y)_j).
    """
    y = np.nan_to_num(np.asarray(row_dual, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    y[(y > 0) & ~np.isfinite(model.row_lower)] = 0.0
    y[(y < 0) & ~np.isfinite(model.row_upper)] = 0.0
    side = np.where(y > 0, model.row_lower, np.where(y < 0, model.row_upper, 0.0))
    row_terms = np.where(y != 0, y * np.where(np.isfinite(side), side, 0.0), 0.0)
    per_nz = model.a_value * np.repeat(y, np.diff(model.a_start))
    aty = np.bincount(model.a_index, weights=per_nz, minlength=model.n_cols)
    col_terms = np.minimum(0.0, model.col_cost - aty)  # x_j in [0, 1]
    value = math.fsum(row_terms) + math.fsum(col_terms)
    scale = (
        math.fsum(np.abs(row_terms)) + math.fsum(np.abs(model.col_cost)) + math.fsum(np.abs(per_nz))
    )
    return (value - DUAL_REL_MARGIN * scale) * COST_UNIT_BYTES - ABS_MARGIN_BYTES
