"""Realistic later-step states: where a stream stands after MILP-greedy has run on it.

Step 0 of a stream puts every user on its initial server, which no policy chose; the
instances that matter for a study (and the hard ones for the exact solvers) are the states a
policy reaches. :func:`rollout_state` plays the reference exact method on a seed's stream up
to step T and returns step T's instance. Every stage stops at a work limit of
``STATE_NODE_LIMIT`` HiGHS nodes with one thread, so the state is the same on every machine
and every run (docs/design.md §7, work limits); benchmark sets (``generate --set --at-step``)
and ``benchmarks/bench_exact.py`` make their later states this one way.
"""

from __future__ import annotations

from dataclasses import replace

from dtasm_opt.core import simulator
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.solvers import registry

# One node per stage: the root's incumbent. The cheapest work limit (the states repeat bit
# for bit), yet not free: a step at (1000, 16) took 34 s here (a 20 s root, 13 s in stage 2).
STATE_NODE_LIMIT = 1


def rollout_state(scenario: Scenario, seed: int, step: int, name: str | None = None) -> Instance:
    """Step ``step`` of seed ``seed``'s stream, reached by the reference method (MILP-greedy)
    at ``STATE_NODE_LIMIT`` nodes per stage. Step 0 is the plain instance of that seed."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step == 0:
        return generate_instance(scenario, seed, name=name)
    stream = generate_stream(scenario, seed, steps=step + 1)
    settings = MethodSettings(seed=seed, threads=1, node_limit=STATE_NODE_LIMIT)
    policy = registry.make_method(registry.REFERENCE, settings)
    server = None
    for t in range(step):
        inst = stream.instance(t, server)
        server = simulator.apply(inst, policy.decide(inst, t).action).final_server
    inst = stream.instance(step, server)
    return replace(inst, name=name) if name is not None else inst
