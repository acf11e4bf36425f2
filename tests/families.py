"""Instance families shared by the exact methods' tests (``from families import ...``):
moderate sizes where HiGHS proves the optimum in seconds, the reference that larger tests
compare against (the tiny ones that brute force can check are in ``bruteforce``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.instance import Instance


def moderate_instance(seed: int, cut: tuple[float, float] | None = None) -> Instance:
    """U in 30..60, H in 3..5, random current servers. Odd seeds are overloaded: capacities cut
    to 2-6 % (one or two users per ES; seeds 3, 13, 23, ... to 6-10 %, a few more). Deeper
    overloads (``cut``) make HiGHS take seconds to minutes to prove the optimum."""
    rng = np.random.default_rng([3, seed])
    u, h = int(rng.integers(30, 61)), int(rng.integers(3, 6))
    inst = generate_stream(Scenario(users=u, servers=h), seed).instance(
        0, rng.integers(0, h + 1, size=u)
    )
    if cut is None and seed % 2:
        cut = (0.06, 0.10) if seed % 10 == 3 else (0.02, 0.06)
    if cut is not None:
        scale = rng.uniform(*cut)
        servers = replace(inst.servers, capacity_hz=inst.servers.capacity_hz * scale)
        inst = replace(inst, servers=servers)
    return inst
