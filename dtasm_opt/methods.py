"""One protocol for every method and the registry of method names (DESIGN sections 5 and 7).

A method maps the current state (an :class:`~dtasm_opt.instance.Instance`) and the rollout's
step counter to a :class:`~dtasm_opt.solution.Decision`. Backends are imported on first use,
so a missing optional dependency only affects the methods that need it, with a message that
says how to install it.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from dtasm_opt.errors import InputError
from dtasm_opt.instance import Instance
from dtasm_opt.solution import Decision


@dataclass(frozen=True)
class MethodSettings:
    """Settings shared by all methods; each method reads the ones that concern it."""

    seed: int = 0  # the rollout's (or solve's) seed; random policies derive their own stream
    time_limit_s: float | None = None  # exact solvers: wall-clock limit per step
    gap: float = 0.0  # exact solvers: relative gap at which to stop (0 = proven optimal)
    threads: int = 1  # exact solvers: threads / workers
    second_stage: str = "migrations"  # exact solvers' tie-break: migrations, downtime or none
    second_stage_time_limit_s: float | None = None  # None: the same limit as stage 1
    backend: str | None = None  # milp: "direct" (highspy matrices) or "pyomo"; None = default


@runtime_checkable
class Method(Protocol):
    name: str

    def decide(self, inst: Instance, step: int) -> Decision:
        """The action for ``inst``; ``step`` counts from the start of the rollout."""
        ...


def method_rng(seed: int, name: str) -> np.random.Generator:
    """A Generator for one method: seeded from the rollout's seed and the method's name, so
    adding or removing a method changes no other method's draws (DESIGN section 7)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


# name -> "module:factory"; factory(name, settings) -> Method. "td3:PATH" is matched by prefix.
_REGISTRY: dict[str, str] = {
    "womig-stable": "dtasm_opt.solvers.baselines:make_baseline",
    "womig-dynamic": "dtasm_opt.solvers.baselines:make_baseline",
    "random": "dtasm_opt.solvers.baselines:make_baseline",
    "nearest": "dtasm_opt.solvers.baselines:make_baseline",
    "danearest": "dtasm_opt.solvers.baselines:make_baseline",
    "milp": "dtasm_opt.solvers.milp:make_milp",
    "cpsat": "dtasm_opt.solvers.cpsat:make_cpsat",
}
_PREFIXED: dict[str, str] = {"td3": "dtasm_opt.solvers.td3_method:make_td3"}
_INSTALL_HINT = {
    "torch": "pip install 'torch==2.13.0'",
    "pyomo": "pip install pyomo highspy",
    "highspy": "pip install highspy",
    "ortools": "pip install ortools",
}


def register(name: str, target: str, *, prefix: bool = False) -> None:
    """Add a method: ``target`` is "module:factory"; ``prefix`` for names like "td3:PATH"."""
    (_PREFIXED if prefix else _REGISTRY)[name] = target


def available_methods() -> list[str]:
    return sorted(_REGISTRY) + [f"{p}:PATH" for p in sorted(_PREFIXED)]


def _factory(name: str) -> Callable[[str, MethodSettings], Method]:
    target = _REGISTRY.get(name)
    if target is None and ":" in name:
        target = _PREFIXED.get(name.split(":", 1)[0])
    if target is None:
        raise InputError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
    module, attr = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        hint = _INSTALL_HINT.get((exc.name or "").split(".")[0])
        if hint is None:
            raise
        raise InputError(f"method {name!r} needs {exc.name}: {hint}") from None
    return getattr(mod, attr)


def make_method(name: str, settings: MethodSettings | None = None) -> Method:
    """Build the method called ``name`` (see :func:`available_methods`)."""
    return _factory(name)(name, settings or MethodSettings())


def parse_methods(text: str) -> list[str]:
    """A comma-separated list of method names, each checked against the registry."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--methods: no method named")
    if len(set(names)) != len(names):
        raise InputError("--methods: a method is named twice")
    for n in names:
        _factory(n)
    return names
