"""The one protocol every method follows, exact, heuristic or learned (docs/design.md §7).

A method maps the current state (an :class:`~dtasm_opt.core.instance.Instance`) and the
rollout's step counter to a :class:`~dtasm_opt.core.solution.Decision`; the simulator alone
judges it. Method names, factories and metadata live in :mod:`dtasm_opt.solvers.registry`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.limits import (
    DEFAULT_CLOUD_SETS,
    DEFAULT_COLUMN_REACH,
    DEFAULT_COLUMN_ROUNDS,
    DEFAULT_FIXED_NODES,
    DEFAULT_NEIGHBOURHOOD_TRIES,
    DEFAULT_OPEN_LOAD_TREE_ROUNDS,
    DEFAULT_ROUNDS_PER_TREE_NODE,
    DEFAULT_TREE_REACH,
    DEFAULT_TREE_ROUNDS,
)
from dtasm_opt.core.options import option
from dtasm_opt.core.solution import Decision

SECOND_STAGES = ("migrations", "downtime", "none")  # exact solvers' tie-breaks (§3)
# How milp feeds HiGHS (solvers/exact/milp.BACKENDS maps each name to its class).
MILP_BACKENDS = ("direct", "pyomo", "scaled")


@dataclass(frozen=True)
class MethodSettings:
    """Settings shared by all methods (the command lines' solver options); each method reads
    the ones that concern it (its registry entry lists them)."""

    seed: int = option(0, "the run's seed; random policies derive their own stream from it")
    time_limit_s: float | None = option(None, "exact solvers: wall-clock seconds per step")
    gap: float = option(0.0, "exact solvers: relative gap to stop at (0: proven optimal)")
    threads: int = option(1, "solver threads (torch threads for TD3)")
    second_stage: str = option(
        "migrations", "exact solvers: tie-break among load-optimal solutions"
    )
    second_stage_time_limit_s: float | None = option(
        None, "exact solvers: seconds for the tie-break stage (none: the stage-1 limit)"
    )
    backend: str | None = option(None, "milp: how HiGHS is fed: direct, pyomo or scaled")
    # Work limits: they stop a search at the same point on every run (with threads = 1), so
    # an exact cell repeats bit for bit; a wall-clock limit then only guards the run.
    node_limit: int | None = option(
        None, "milp: HiGHS branch-and-bound nodes per stage, a work limit (same answer every run)"
    )
    tree_rounds: int | None = option(
        None,
        "lagrangian: knapsack rounds of the tie-break's tree search per step, a work limit "
        f"(0: no tree search; default {DEFAULT_TREE_ROUNDS})",
    )
    tree_nodes: int | None = option(
        None,
        "lagrangian: nodes of the tie-break's tree search per step, a work limit (where the "
        "load stage is not proven at most the default from open_load_tree_rounds; default: "
        f"one per {DEFAULT_ROUNDS_PER_TREE_NODE} of its rounds, at least 5,000)",
    )
    open_load_tree_rounds: int | None = option(
        None,
        "lagrangian: the tree search's knapsack rounds on a step whose load stage is not "
        f"proven, a work limit (at most tree_rounds; default {DEFAULT_OPEN_LOAD_TREE_ROUNDS})",
    )
    tree_reach: int | None = option(
        None,
        "lagrangian: the tree search starts where the tie-break's bound is 1 to this many "
        "migrations short, on a step whose load stage is proven (elsewhere at most 2; "
        f"default {DEFAULT_TREE_REACH})",
    )
    column_rounds: int | None = option(
        None,
        "lagrangian: knapsack rounds of the tie-break's column generation per step, a work "
        f"limit (0: none; default {DEFAULT_COLUMN_ROUNDS})",
    )
    column_reach: int | None = option(
        None,
        "lagrangian: column generation runs where the tie-break's bound is 1 to this many "
        "migrations short, on a step whose load stage is proven (elsewhere at most 2; "
        f"default {DEFAULT_COLUMN_REACH})",
    )
    fixed_nodes: int | None = option(
        None,
        "lagrangian: HiGHS nodes on what reduced-cost fixing leaves where the tree stops with "
        f"the tie-break's bound one short, a work limit (0: no such search; default "
        f"{DEFAULT_FIXED_NODES})",
    )
    neighbourhood_tries: int | None = option(
        None,
        "lagrangian: neighbourhoods of the tie-break's large-neighbourhood search per step, a "
        f"work limit (0: none; default {DEFAULT_NEIGHBOURHOOD_TRIES})",
    )
    cloud_sets: int | None = option(
        None,
        "lagrangian: the most cloud sets lighter than an overloaded load stage's plan that it "
        f"refutes one by one to prove the plan, a work limit (0: none; default "
        f"{DEFAULT_CLOUD_SETS})",
    )
    overloaded_nodes: int | None = option(
        None,
        "lagrangian: HiGHS nodes on a load stage that cannot serve everyone, a work limit "
        "(0: none, the engine's bound and plans alone; default: the node limit)",
    )
    deterministic_limit: float | None = option(
        None, "cpsat: CP-SAT deterministic time per solve, a work limit (same answer every run)"
    )


@runtime_checkable
class Method(Protocol):
    """What every method offers: a name and one decision per state."""

    name: str

    def decide(self, inst: Instance, step: int) -> Decision:
        """The action for ``inst``; ``step`` counts from the start of the rollout."""
        ...


# A method may also offer ``check(instance) -> None``, raising InputError when it cannot run
# on that instance's system (a trained policy on a system it was not trained on). Runs call
# it on a stream's first instance before they write anything.


def method_rng(seed: int, name: str) -> np.random.Generator:
    """A Generator for one method: seeded from the rollout's seed and the method's name, so
    adding or removing a method changes no other method's draws (docs/design.md §7)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])
