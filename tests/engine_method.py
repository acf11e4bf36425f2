"""The ``lagrangian`` method as the engine's tests build it (``from engine_method import ...``)."""

from __future__ import annotations

import json

from dtasm_opt.core.method import MethodSettings
from dtasm_opt.solvers import registry

ENGINE = "lagrangian"


def engine(**settings: object):
    """The engine with these MethodSettings (its own defaults for the rest)."""
    return registry.make_method(ENGINE, MethodSettings(**settings))  # type: ignore[arg-type]


def as_json(solution) -> dict:
    """A solution as ``solve --out`` writes it and ``verify`` reads it."""
    return json.loads(json.dumps(solution.to_dict()))


def tiny_tie_breaks(count: int):
    """(seed, instance, problem, stage 1's plan as a pair mask, the migrations stage's dual)
    for the first ``count`` tiny instances of every size and both families whose stage 1
    serves someone: tie-breaks to start from a weak plan (stage 1's, no tie-break)."""
    from bruteforce import tiny_instance

    from dtasm_opt.core.solution import judge
    from dtasm_opt.models.step_problem import step_problem
    from dtasm_opt.solvers.exact.lagrangian import migrations_dual

    sizes = [(u, h) for u in range(2, 6) for h in range(1, 4)]
    for seed in range(count):
        users, servers = sizes[seed % len(sizes)]
        inst = tiny_instance(seed, users, servers, overloaded=seed % 2 == 1)
        stage1 = judge(engine(second_stage="none"), inst)
        problem = step_problem(inst)
        chosen = stage1.action[problem.pairs.user] == problem.pairs.server
        served = problem.served(chosen)
        if served.any():
            yield seed, inst, problem, chosen, migrations_dual(problem, served)
