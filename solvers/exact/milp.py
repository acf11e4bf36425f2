"""MILP-greedy (``milp``, docs/design.md §7): the exact per-step optimum as an online policy.

At every step the policy solves the MILP of :mod:`dtasm_opt.models.step_problem` (least cloud
load, then fewest migrations among load-optimal solutions) and proposes its assignment. It is
myopic: optimal per step, not over a stream. With a per-step time limit the step's status,
proven bound and gap say what was reached (``Decision.info``).

Backends are named in :data:`BACKENDS` and imported on first use; the default is the direct
highspy build, the fastest to build for rollouts.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Decision
from dtasm_opt.errors import InputError
from dtasm_opt.solvers.exact.milp_driver import SolveOptions, solve_step

# backend name -> "module:class"; the class builds and solves one step (milp_driver.Backend).
BACKENDS = {
    "direct": "dtasm_opt.solvers.exact.highs_direct:DirectBackend",
    "pyomo": "dtasm_opt.solvers.exact.highs_pyomo:PyomoBackend",
    "scaled": "dtasm_opt.solvers.exact.highs_direct:ScaledBackend",
}
DEFAULT_BACKEND = "direct"


def backend_class(name: str) -> type:
    """The backend class called ``name`` (see :data:`BACKENDS`)."""
    target = BACKENDS.get(name)
    if target is None:
        raise InputError(f"backend: {name!r} is unknown, use one of {sorted(BACKENDS)}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class MilpGreedy:
    """Solve every step's MILP and propose its assignment."""

    options: SolveOptions
    backend: str = DEFAULT_BACKEND
    name: str = "milp"

    def __post_init__(self) -> None:
        self._backend_class = backend_class(self.backend)

    def decide(self, inst: Instance, step: int) -> Decision:
        # A fresh backend per step: a step's model shares nothing with the previous one.
        return solve_step(inst, self._backend_class(), self.options)


def make_milp(
    name: str,
    settings: MethodSettings,
    *,
    backend: str | None = None,
    second_stage: str | None = None,
    second_stage_time_limit_s: float | None = None,
) -> MilpGreedy:
    """The ``milp`` method. ``settings`` gives the per-step time limit (None: none), the
    relative gap (0: proven optimal), the node limit per stage, HiGHS's threads and seed, the
    backend and the second
    stage: "migrations" (docs/design.md's default tie-break), "downtime" or "none"; a stage-2 time
    limit of None means stage 2 gets the same limit as stage 1. Keywords override settings."""
    options = SolveOptions(
        time_limit_s=settings.time_limit_s,
        gap=settings.gap,
        threads=settings.threads,
        seed=settings.seed,
        second_stage=second_stage or settings.second_stage,
        node_limit=settings.node_limit,
        second_stage_time_limit_s=(
            settings.second_stage_time_limit_s
            if second_stage_time_limit_s is None
            else second_stage_time_limit_s
        ),
    )
    return MilpGreedy(
        options=options, backend=backend or settings.backend or DEFAULT_BACKEND, name=name
    )
