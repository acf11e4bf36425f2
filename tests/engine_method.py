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
