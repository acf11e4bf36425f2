"""Nearest and DANearest: send each user's SI to the ES at its current RAN."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.physics import target_physics
from dtasm_opt.core.solution import Decision


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


def make_nearest(name: str, settings: MethodSettings) -> Nearest:
    return Nearest(name=name)


def make_danearest(name: str, settings: MethodSettings) -> DANearest:
    return DANearest(name=name)
