"""dtasm-opt: dynamic task allocation and service migration in edge-cloud IoT systems.

The public API, importable from the top level; each name is imported on first use, so
``import dtasm_opt`` pulls in neither torch nor Pyomo (nor any solver)::

    import dtasm_opt as dt

    stream = dt.generate_stream(dt.Scenario(users=200, servers=8), seed=1, steps=100)
    policy = dt.make_method("danearest")
    inst = stream.instance(0)
    out = dt.simulator.apply(inst, policy.decide(inst, 0).action)

The package is arranged by role (docs/design.md §6): :mod:`dtasm_opt.core` (data, physics,
simulator, records, files), :mod:`dtasm_opt.models` (formulations), :mod:`dtasm_opt.solvers`
(methods and their registry), :mod:`dtasm_opt.rl` (the Gymnasium environment),
:mod:`dtasm_opt.experiments` (rollouts, bounds, benchmark sets), :mod:`dtasm_opt.studies`
(study specs to results), and the ``python -m dtasm_opt.X`` command modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it (a module itself when the name is a module)
_EXPORTS = {
    "InputError": "dtasm_opt.errors",
    "Instance": "dtasm_opt.core.instance",
    "Stream": "dtasm_opt.core.stream",
    "Scenario": "dtasm_opt.core.generator",
    "generate_instance": "dtasm_opt.core.generator",
    "generate_stream": "dtasm_opt.core.generator",
    "simulator": "dtasm_opt.core.simulator",
    "StepOutcome": "dtasm_opt.core.simulator",
    "Decision": "dtasm_opt.core.solution",
    "Solution": "dtasm_opt.core.solution",
    "judge": "dtasm_opt.core.solution",
    "Method": "dtasm_opt.core.method",
    "MethodSettings": "dtasm_opt.core.method",
    "StepRecord": "dtasm_opt.core.records",
    "read_instance": "dtasm_opt.core.files",
    "read_stream": "dtasm_opt.core.files",
    "write_json": "dtasm_opt.core.files",
    "make_method": "dtasm_opt.solvers.registry",
    "available_methods": "dtasm_opt.solvers.registry",
    "Rollout": "dtasm_opt.experiments.rollout",
    "evaluate": "dtasm_opt.experiments.evaluation",
    "Evaluation": "dtasm_opt.experiments.evaluation",
}
__all__ = [
    "Decision",
    "Evaluation",
    "InputError",
    "Instance",
    "Method",
    "MethodSettings",
    "Rollout",
    "Scenario",
    "Solution",
    "StepOutcome",
    "StepRecord",
    "Stream",
    "available_methods",
    "evaluate",
    "generate_instance",
    "generate_stream",
    "judge",
    "make_method",
    "read_instance",
    "read_stream",
    "simulator",
    "write_json",
]

if TYPE_CHECKING:
    from dtasm_opt.core import simulator
    from dtasm_opt.core.files import read_instance, read_stream, write_json
    from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
    from dtasm_opt.core.instance import Instance
    from dtasm_opt.core.method import Method, MethodSettings
    from dtasm_opt.core.records import StepRecord
    from dtasm_opt.core.simulator import StepOutcome
    from dtasm_opt.core.solution import Decision, Solution, judge
    from dtasm_opt.core.stream import Stream
    from dtasm_opt.errors import InputError
    from dtasm_opt.experiments.evaluation import Evaluation, evaluate
    from dtasm_opt.experiments.rollout import Rollout
    from dtasm_opt.solvers.registry import available_methods, make_method


# gymnasium.make("dtasm_opt/DTASM-v0") works once dtasm_opt is imported, without this import
# loading Gymnasium (docs/design.md §6).
_registration = importlib.import_module("dtasm_opt.rl.registration")
_registration.register_when_gymnasium_loads()


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dtasm_opt' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
