"""Scenario generator: the paper's Table II, in SI units, drawn from one seed (docs/design.md §4).

One ``numpy.random.SeedSequence`` per seed is split into independent child streams for the
system (ESs, links, application kinds, RAN popularity), the users' static data and the
per-step exogenous state. Hence the system depends only on (seed, H, F), the users on
(seed, U), and a longer stream extends a shorter one with the same settings step for step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dtasm_opt.core.instance import Apps, Instance, Servers
from dtasm_opt.core.limits import MAX_APPS, MAX_SERVERS, MAX_USERS, check_at_most
from dtasm_opt.core.stream import Stream, check_stream_size
from dtasm_opt.core.units import KBYTE_BITS, MBYTE_BITS
from dtasm_opt.errors import InputError

# Table II as (low, high) in SI units: Hz, bit/s, s, bits, cycles/bit, fractions.
TABLE_II = {
    "capacity_hz": (60e9, 100e9),  # P: [60, 100] GHz
    "bandwidth_bps": (20e6, 80e6),  # B between RANs: [20, 80] Mbps
    "delay_s": (1e-3, 3e-3),  # delta: [1, 3] ms
    "cloud_bandwidth_bps": (50e6, 120e6),  # Bc: [50, 120] Mbps
    "cloud_delay_s": (10e-3, 20e-3),  # deltac: [10, 20] ms
    "task_bits": (512 * KBYTE_BITS, 1024 * KBYTE_BITS),  # Vt: [512, 1024] KByte
    "result_bits": (10 * KBYTE_BITS, 20 * KBYTE_BITS),  # Vr: [10, 20] KByte
    "context_bits": (1 * MBYTE_BITS, 8 * MBYTE_BITS),  # Vm: [1, 8] MByte
    "sf_prepare_s": (100e-3, 200e-3),  # dsf: [100, 200] ms
    "latency_limit_s": (800e-3, 1000e-3),  # tau: [800, 1000] ms
    "cycles_per_bit": (228.0, 538.0),  # kappa: [228, 538] cycles/bit
    "sf_capacity_hz": (200e6, 300e6),  # Psf: [200, 300] MHz
    "checkpoint_share": (0.20, 0.30),  # beta: [20, 30] %
    "suspend_cycles_per_bit": (0.350, 0.450),  # rho_s: [350, 450] cycles/kbit
    "resume_cycles_per_bit": (0.350, 0.450),  # rho_r: [350, 450] cycles/kbit
}
MOBILITY = ("iid", "markov")
MIN_GAMMA_SHAPE = 1e-3
STEP_VOLUMES = ("task_bits", "result_bits", "context_bits", "cycles_per_bit")  # redrawn per step


@dataclass(frozen=True)
class Scenario:
    """What to generate; the defaults are the paper's default scenario (Section V-A)."""

    users: int = 200  # U
    servers: int = 8  # H edge servers
    apps: int = 10  # F application kinds
    xi_s: float = 1.2  # seamless-migration bound
    mobility: str = "iid"  # "iid": y redrawn from w every step (paper); "markov": keep w.p. p
    stay_prob: float = 0.8  # p of the Markov mobility
    gamma_shape: float = 2.0  # k of the RAN popularity w_h ~ Gamma(k, 1)

    def __post_init__(self) -> None:
        for what, value, bound in (
            ("users", self.users, MAX_USERS),
            ("servers", self.servers, MAX_SERVERS),
            ("apps", self.apps, MAX_APPS),
        ):
            if value < 1:
                raise InputError(f"{what}: {value} is invalid, must be >= 1")
            check_at_most(value, bound, what)
        if not (np.isfinite(self.xi_s) and self.xi_s >= 0):
            raise InputError(f"xi: {self.xi_s} is invalid, must be finite and >= 0")
        if self.mobility not in MOBILITY:
            raise InputError(f"mobility: {self.mobility!r} is unknown, use one of {MOBILITY}")
        if not (0.0 <= self.stay_prob <= 1.0):
            raise InputError(f"stay-prob: {self.stay_prob} is invalid, must be in [0, 1]")
        if not (np.isfinite(self.gamma_shape) and self.gamma_shape >= MIN_GAMMA_SHAPE):
            # Below this the Gamma draws underflow to 0 and the popularity is undefined.
            raise InputError(
                f"gamma-shape: {self.gamma_shape} is invalid, must be >= {MIN_GAMMA_SHAPE}"
            )


def _uniform(rng: np.random.Generator, key: str, size) -> np.ndarray:
    low, high = TABLE_II[key]
    return rng.uniform(low, high, size=size)


def _symmetric(rng: np.random.Generator, key: str, n: int) -> np.ndarray:
    """A symmetric (n, n) matrix with Table II entries off the diagonal and 0 on it."""
    upper = np.triu(_uniform(rng, key, (n, n)), k=1)
    return upper + upper.T


def generate_system(rng: np.random.Generator, scenario: Scenario):
    """ESs, links, application kinds and the RAN popularity w (normalised Gamma draws)."""
    h, f = scenario.servers, scenario.apps
    servers = Servers(
        capacity_hz=_uniform(rng, "capacity_hz", h),
        bandwidth_bps=_symmetric(rng, "bandwidth_bps", h),
        delay_s=_symmetric(rng, "delay_s", h),
        cloud_bandwidth_bps=_uniform(rng, "cloud_bandwidth_bps", h),
        cloud_delay_s=_uniform(rng, "cloud_delay_s", h),
    )
    apps = Apps(
        sf_capacity_hz=_uniform(rng, "sf_capacity_hz", f),
        checkpoint_share=_uniform(rng, "checkpoint_share", f),
        suspend_cycles_per_bit=_uniform(rng, "suspend_cycles_per_bit", f),
        resume_cycles_per_bit=_uniform(rng, "resume_cycles_per_bit", f),
        sf_prepare_s=_uniform(rng, "sf_prepare_s", f),
    )
    weights = rng.gamma(scenario.gamma_shape, 1.0, size=h)
    if not weights.sum() > 0:  # every draw underflowed (a shape near MIN_GAMMA_SHAPE)
        raise InputError(f"gamma-shape: {scenario.gamma_shape} is too small for this seed")
    popularity = weights / weights.sum()
    return servers, apps, popularity


def generate_stream(
    scenario: Scenario, seed: int, steps: int = 1, name: str | None = None
) -> Stream:
    """A stream of ``steps`` exogenous steps; initial servers are the users' step-0 RANs."""
    if steps < 1:
        raise InputError(f"steps: {steps} is invalid, must be >= 1")
    check_stream_size(steps, scenario.users)
    system_ss, users_ss, steps_ss = np.random.SeedSequence(int(seed)).spawn(3)
    servers, apps, popularity = generate_system(np.random.default_rng(system_ss), scenario)
    u = scenario.users
    urng = np.random.default_rng(users_ss)
    app = urng.integers(0, scenario.apps, size=u)
    tau = _uniform(urng, "latency_limit_s", u)

    srng = np.random.default_rng(steps_ss)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("ran", *STEP_VOLUMES)}
    ran = None
    for _ in range(steps):
        # Every step draws the same variates in the same order, whatever the mobility, so the
        # volumes of step t do not depend on the mobility model.
        fresh = srng.choice(scenario.servers, size=u, p=popularity)
        stay = srng.random(u) < scenario.stay_prob
        if ran is None or scenario.mobility == "iid":
            ran = fresh
        else:
            ran = np.where(stay, ran, fresh)
        cols["ran"].append(ran)
        for key in STEP_VOLUMES:
            cols[key].append(_uniform(srng, key, u))
    arrays = {k: np.stack(v) for k, v in cols.items()}
    meta = {
        "generator": "dtasm_opt.generator",
        "seed": int(seed),
        "steps": int(steps),
        **asdict(scenario),
        "ran_popularity": popularity.tolist(),
    }
    return Stream(
        servers=servers,
        apps=apps,
        app=app,
        latency_limit_s=tau,
        initial_server=arrays["ran"][0],
        **arrays,
        xi_s=scenario.xi_s,
        name=name or f"u{u}-h{scenario.servers}-s{seed}",
        meta=meta,
    )


def generate_instance(scenario: Scenario, seed: int, name: str | None = None) -> Instance:
    """One step: step 0 of the stream of the same seed, users on their RANs' ESs."""
    stream = generate_stream(scenario, seed, steps=1, name=name)
    inst = stream.instance(0)
    return Instance(inst.servers, inst.apps, inst.users, inst.xi_s, stream.name, stream.meta)
