"""``py:package.module:factory``: a policy of your own as a method, anywhere a method name goes
(``solve``, ``rollout``, study specs, :func:`dtasm_opt.evaluate`).

The protocol (docs/design.md §7): ``factory(settings)`` receives the run's
:class:`~dtasm_opt.core.method.MethodSettings` (its ``seed`` for your own random draws) and
returns an object with

- ``decide(instance, step)``: the targets for :class:`~dtasm_opt.core.instance.Instance`
  ``instance``, either a :class:`~dtasm_opt.core.solution.Decision` or an array of U integers
  in 0..H (H = the cloud); ``step`` counts from the start of the run;
- optionally ``check(instance)``: raise :class:`~dtasm_opt.errors.InputError` when the policy
  cannot run on that instance's system (it is called before a run writes anything);
- optionally ``rng``: a ``numpy.random.Generator``, saved and restored by a rollout's resume.

The simulator judges every action, as for every method. Example::

    # mypolicies.py
    import numpy as np

    class Stay:
        def decide(self, inst, step):
            return inst.users.server.copy()

    def make(settings):
        return Stay()

    python -m dtasm_opt.rollout stream.json --methods py:mypolicies:make,danearest --out r.csv
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Decision
from dtasm_opt.errors import InputError


class ExternalPolicy:
    """Adapts a user's object to the Method protocol (a Decision from every decide)."""

    def __init__(self, inner: Any, name: str):
        if not callable(getattr(inner, "decide", None)):
            raise InputError(f"{name}: the factory's object has no decide(instance, step)")
        self.inner, self.name = inner, name
        rng = getattr(inner, "rng", None)
        if isinstance(rng, np.random.Generator):
            self.rng = rng  # a rollout saves and restores it on resume

    def check(self, inst: Instance) -> None:
        check = getattr(self.inner, "check", None)
        if callable(check):
            check(inst)

    def decide(self, inst: Instance, step: int) -> Decision:
        out = self.inner.decide(inst, step)
        if isinstance(out, Decision):
            return out
        return Decision(action=np.asarray(out), status="heuristic")


def make_py(name: str, settings: MethodSettings) -> ExternalPolicy:
    """The registry's factory of ``py:package.module:factory`` names."""
    target = name.split(":", 1)[1] if ":" in name else ""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise InputError(f"method {name!r}: give it as py:package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"method {name!r}: cannot import {module_name} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"method {name!r}: {module_name} has no callable {attr!r}")
    return ExternalPolicy(factory(settings), name)
