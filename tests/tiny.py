"""Tiny hand-built instances for the unit tests: 2 ESs, 2 application kinds, round numbers.

Imported as ``from tiny import ...``: ``tests/`` is not a package, so pytest's default
"prepend" import mode puts this folder on ``sys.path`` when it collects a test file here.

The numbers are chosen so that the physics of docs/design.md §2 can be done by hand:

- link 0 <-> 1: B = 2e7 bit/s, delta = 1 ms; cloud links: Bc = (1e7, 2e7), deltac = (10, 20) ms;
- app 0: Psf = 2e8 Hz, beta = 0.25, rho_s = 0.5, rho_r = 0.25, dsf = 0.1 s, so that
  ds = Vm * 0.5 / 5e7 = Vm * 1e-8 s and dr = Vm * 0.25 / 5e7 = Vm * 5e-9 s;
- app 1: Psf = 4e8 Hz, beta = 0.5, rho_s = 0.25, rho_r = 0.5, dsf = 0.2 s, so that
  ds = Vm * 0.25 / 2e8 = Vm * 1.25e-9 s and dr = Vm * 0.5 / 2e8 = Vm * 2.5e-9 s.

With the default Vm = 8e6 bits (app 0): ds = 0.08 s, dr = 0.04 s, sync(0->1) = 0.401 s,
sync(0->cloud) = 0.81 s, sync(1->cloud) = 0.42 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.instance import Apps, Instance, Servers, Users
from dtasm_opt.core.stream import Stream

CLOUD = 2  # index of the cloud with H = 2

USER_DEFAULTS = {
    "app": 0,
    "latency_limit_s": 1.0,
    "ran": 0,
    "task_bits": 3.9e6,
    "result_bits": 1e5,
    "context_bits": 8e6,
    "cycles_per_bit": 100.0,
    "server": 0,
}


def make_servers(capacity_hz: Sequence[float] = (1e10, 1e10)) -> Servers:
    return Servers(
        capacity_hz=np.array(capacity_hz, dtype=float),
        bandwidth_bps=np.array([[0.0, 2e7], [2e7, 0.0]]),
        delay_s=np.array([[0.0, 1e-3], [1e-3, 0.0]]),
        cloud_bandwidth_bps=np.array([1e7, 2e7]),
        cloud_delay_s=np.array([0.01, 0.02]),
    )


def make_apps() -> Apps:
    return Apps(
        sf_capacity_hz=np.array([2e8, 4e8]),
        checkpoint_share=np.array([0.25, 0.5]),
        suspend_cycles_per_bit=np.array([0.5, 0.25]),
        resume_cycles_per_bit=np.array([0.25, 0.5]),
        sf_prepare_s=np.array([0.1, 0.2]),
    )


def make_instance(
    users: Sequence[dict],
    *,
    capacity_hz: Sequence[float] = (1e10, 1e10),
    xi_s: float = 1.2,
) -> Instance:
    """An instance on the tiny system; each user is a dict overriding ``USER_DEFAULTS``."""
    unknown = {k for u in users for k in u} - set(USER_DEFAULTS)
    if unknown:
        raise KeyError(f"unknown user fields {sorted(unknown)}")
    cols = {k: np.array([u.get(k, d) for u in users]) for k, d in USER_DEFAULTS.items()}
    for k in ("app", "ran", "server"):
        cols[k] = cols[k].astype(np.int64).reshape(len(users))
    for k in set(cols) - {"app", "ran", "server"}:
        cols[k] = cols[k].astype(float).reshape(len(users))
    return Instance(make_servers(capacity_hz), make_apps(), Users(**cols), xi_s, "tiny")


def small_stream(seed: int, users: int, servers: int, steps: int, load: float, xi: float) -> Stream:
    """A Table II stream whose ES capacities are scaled by ``load`` (< 1: overloaded)."""
    st = generate_stream(Scenario(users=users, servers=servers, apps=3, xi_s=xi), seed, steps)
    caps = st.servers.capacity_hz * load
    return replace(st, servers=replace(st.servers, capacity_hz=caps))
