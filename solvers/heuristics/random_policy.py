"""Random: the paper's baseline that sends every user to a uniformly random ES each step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings, method_rng
from dtasm_opt.core.solution import Decision


@dataclass
class RandomPolicy:
    """A uniformly random ES per user at every step."""

    rng: np.random.Generator
    name: str = "random"

    def decide(self, inst: Instance, step: int) -> Decision:
        return Decision(action=self.rng.integers(0, inst.n_servers, size=inst.n_users))


def make(name: str, settings: MethodSettings) -> RandomPolicy:
    return RandomPolicy(rng=method_rng(settings.seed, name), name=name)
