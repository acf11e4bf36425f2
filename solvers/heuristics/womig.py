"""WoMig-stable and WoMig-dynamic: the paper's baselines without migration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings, method_rng
from dtasm_opt.core.solution import Decision

WOMIG_DYNAMIC_PERIOD = 500  # K: WoMig-dynamic re-draws its allocation every K steps


@dataclass
class WoMigStable:
    """a[u] = s[u]: keep every SI where it runs (a user in the cloud stays there)."""

    name: str = "womig-stable"

    def decide(self, inst: Instance, step: int) -> Decision:
        return Decision(action=inst.users.server.copy())


@dataclass
class WoMigDynamic:
    """A uniformly random ES per user at steps t % K == 0 (t counted from the rollout's
    start), else WoMig-stable."""

    rng: np.random.Generator
    period: int = WOMIG_DYNAMIC_PERIOD
    name: str = "womig-dynamic"

    def decide(self, inst: Instance, step: int) -> Decision:
        if step % self.period == 0:
            return Decision(action=self.rng.integers(0, inst.n_servers, size=inst.n_users))
        return Decision(action=inst.users.server.copy())


def make_stable(name: str, settings: MethodSettings) -> WoMigStable:
    return WoMigStable(name=name)


def make_dynamic(name: str, settings: MethodSettings) -> WoMigDynamic:
    return WoMigDynamic(rng=method_rng(settings.seed, name), name=name)
