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


def stage1_tie_break(inst):
    """(problem, stage 1's plan as a pair mask, the migrations stage's dual over the users it
    serves): a tie-break to start from a weak plan (HiGHS's stage 1 as the engine runs it, no
    tie-break; not the engine's own stage 1, whose search keeps users at home)."""
    from dtasm_opt.core.solution import judge
    from dtasm_opt.models.step_problem import step_problem
    from dtasm_opt.solvers.exact.engine import ENGINE_BACKEND, ENGINE_NODE_LIMIT
    from dtasm_opt.solvers.exact.lagrangian import migrations_dual

    settings = MethodSettings(
        second_stage="none", backend=ENGINE_BACKEND, node_limit=ENGINE_NODE_LIMIT
    )
    stage1 = judge(registry.make_method("milp", settings), inst)
    problem = step_problem(inst)
    chosen = stage1.action[problem.pairs.user] == problem.pairs.server
    return problem, chosen, migrations_dual(problem, problem.served(chosen))


def tiny_tie_breaks(count: int):
    """(seed, instance, problem, plan, dual) of :func:`stage1_tie_break` for the first
    ``count`` tiny instances of every size and both families whose stage 1 serves someone."""
    from bruteforce import tiny_instance

    sizes = [(u, h) for u in range(2, 6) for h in range(1, 4)]
    for seed in range(count):
        users, servers = sizes[seed % len(sizes)]
        inst = tiny_instance(seed, users, servers, overloaded=seed % 2 == 1)
        problem, chosen, dual = stage1_tie_break(inst)
        if dual.rows.any():
            yield seed, inst, problem, chosen, dual
