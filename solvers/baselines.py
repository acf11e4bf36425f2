"""The paper's five baselines (Section V, DESIGN section 7) as online policies.

Each maps the current state to an action; the simulator judges it. Random choices come from
the method's own Generator (``method_rng``), so methods never share a random stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtasm_opt.instance import Instance
from dtasm_opt.methods import MethodSettings, method_rng
from dtasm_opt.physics import target_physics
from dtasm_opt.solution import Decision

WOMIG_DYNAMIC_PERIOD = 500  # K: WoMig-dynamic re-draws its allocation every K steps


@dataclass
class WoMigStable:
    """a[u] = s[u]: keep every SI where it runs (a user in the cloud stays there)."""

    name: str = "womig-stable"

    def decide(self, inst: Instance, step: int) -> Decision:
        return Decision(action=inst.users.server.copy())


@dataclass
class WoMigDynamic:
    """A uniformly random ES per user at steps t % K == 0, else WoMig-stable."""

    rng: np.random.Generator
    period: int = WOMIG_DYNAMIC_PERIOD
    name: str = "womig-dynamic"

    def decide(self, inst: Instance, step: int) -> Decision:
        if step % self.period == 0:
            return Decision(action=self.rng.integers(0, inst.n_servers, size=inst.n_users))
        return Decision(action=inst.users.server.copy())


@dataclass
class RandomPolicy:
    """A uniformly random ES per user at every step."""

    rng: np.random.Generator
    name: str = "random"

    def decide(self, inst: Instance, step: int) -> Decision:
        return Decision(action=self.rng.integers(0, inst.n_servers, size=inst.n_users))


@dataclass
class Nearest:
    """a[u] = y[u]: the ES at the user's RAN (communication latency 0)."""

    name: str = "nearest"

    def decide(self, inst: Instance, step: int) -> Decision:
        return Decision(action=inst.users.ran.copy())


@dataclass
class DANearest:
    """Downtime-aware Nearest: a[u] = y[u] if that is s[u] or its downtime (3) is <= xi,
    otherwise a[u] = s[u]."""

    name: str = "danearest"

    def decide(self, inst: Instance, step: int) -> Decision:
        y, s = inst.users.ran, inst.users.server
        downtime = target_physics(inst, y).migration_s
        go = (y == s) | (downtime <= inst.xi_s)
        return Decision(action=np.where(go, y, s))


def make_baseline(name: str, settings: MethodSettings):
    if name == "womig-stable":
        return WoMigStable()
    if name == "womig-dynamic":
        return WoMigDynamic(rng=method_rng(settings.seed, name))
    if name == "random":
        return RandomPolicy(rng=method_rng(settings.seed, name))
    if name == "nearest":
        return Nearest()
    if name == "danearest":
        return DANearest()
    raise KeyError(name)
