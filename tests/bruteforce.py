"""Brute force over all (H+1)^U actions through the simulator, and the tiny instances it runs
on: the independent reference of the exact methods' tests (``from bruteforce import ...``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from dtasm_opt.core import simulator
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.instance import Instance


def tiny_instance(seed: int, users: int, servers: int, overloaded: bool) -> Instance:
    """A Table II stream's step 0 for ``seed`` with current servers (the cloud included) and,
    if ``overloaded``, the capacities cut to 5-10 %, both drawn from a Generator seeded by
    ``seed``."""
    rng = np.random.default_rng([20261, seed])
    stream = generate_stream(Scenario(users=users, servers=servers, apps=3), seed=seed)
    inst = stream.instance(0, rng.integers(0, servers + 1, size=users))
    if overloaded:
        # An ES takes a few users at most, so the knapsack rows decide.
        cut = rng.uniform(0.05, 0.10)
        inst = replace(
            inst, servers=replace(inst.servers, capacity_hz=inst.servers.capacity_hz * cut)
        )
    return inst


@dataclass(frozen=True)
class BruteForce:
    load: float  # least cloud load over all actions
    migrations: int  # fewest migrations among actions reaching it
    downtime: float  # least total downtime among them


def brute_force(inst: Instance) -> BruteForce:
    rows = []
    for action in itertools.product(range(inst.n_servers + 1), repeat=inst.n_users):
        out = simulator.apply(inst, np.array(action))
        rows.append((out.cloud_load_bytes, out.migrated, out.total_downtime_s))
    loads = np.array([r[0] for r in rows])
    best = loads.min()
    ties = [r for r in rows if r[0] <= best + 1e-9 * max(best, 1.0)]
    return BruteForce(best, min(r[1] for r in ties), min(r[2] for r in ties))


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)


SEEDS = st.integers(0, 2**32 - 1)
# (users, servers): at most 4^5 = 1024 actions for the brute force.
SIZES = st.sampled_from([(u, h) for u in range(2, 6) for h in range(1, 4)])


def plans_serving(problem, served: np.ndarray):
    """Every plan (mask over pairs) that puts each served user on one of its ESs and fits."""
    p = problem.pairs
    options = [np.flatnonzero(p.user == u) for u in np.flatnonzero(served)]
    for picks in itertools.product(*options):
        chosen = np.zeros(p.n_pairs, dtype=bool)
        chosen[list(picks)] = True
        if problem.fits(chosen).all():
            yield chosen


def everyone_cases(count: int):
    """(problem, which users have an admissible pair, whether brute force finds a plan that
    places each of them) on ``count`` tiny instances of both families, sizes in turn."""
    from dtasm_opt.models.step_problem import step_problem

    sizes = [(u, h) for u in range(2, 7) for h in range(1, 4)]
    for seed in range(count):
        inst = tiny_instance(seed, *sizes[seed % len(sizes)], overloaded=seed % 2 == 1)
        problem = step_problem(inst)
        has_pair = np.bincount(problem.pairs.user, minlength=problem.n_users) > 0
        yield problem, has_pair, next(plans_serving(problem, has_pair), None) is not None
