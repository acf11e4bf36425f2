"""One ``Solution`` type returned by every method, exact, heuristic or learned.

A method proposes an action (a :class:`Decision`, with its solver's status, proven bound and
extra figures); :func:`judge` implements the action in the simulator, which alone decides
the final servers, the cloud load and the metrics the solution reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from dtasm_opt.core import simulator
from dtasm_opt.core.instance import Instance

SOLUTION_FORMAT = "dtasm-solution/1"
STATUSES = ("optimal", "feasible", "time_limit", "work_limit", "heuristic")


@dataclass(frozen=True, eq=False)
class Decision:
    """What a method returns for one step: an action and what its solver could prove."""

    action: np.ndarray  # (U,) targets, H = cloud
    status: str = "heuristic"  # one of STATUSES
    bound_bytes: float | None = None  # proven lower bound on the cloud load, if any
    info: dict = field(default_factory=dict)  # solver figures (objective, nodes, stages...)


@dataclass(frozen=True, eq=False)
class Solution:
    """A method's answer to one instance, as judged by the simulator (``dtasm-solution/1``)."""

    method: str
    status: str
    action: np.ndarray
    final_server: np.ndarray
    cloud_load_bytes: float
    bound_bytes: float | None
    gap: float | None
    metrics: dict
    solve_time_s: float
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format": SOLUTION_FORMAT,
            "method": self.method,
            "status": self.status,
            "action": self.action.tolist(),
            "final_server": self.final_server.tolist(),
            "cloud_load_bytes": self.cloud_load_bytes,
            "bound_bytes": self.bound_bytes,
            "gap": self.gap,
            "metrics": self.metrics,
            "solve_time_s": self.solve_time_s,
            **({"info": self.info} if self.info else {}),
        }


def relative_gap(incumbent_bytes: float, bound_bytes: float | None) -> float | None:
    """docs/design.md §3: (incumbent - bound) / max(incumbent, 1 byte), clipped at 0."""
    if bound_bytes is None:
        return None
    return max(0.0, (incumbent_bytes - bound_bytes) / max(incumbent_bytes, 1.0))


def from_decision(
    method: str, inst: Instance, decision: Decision, solve_time_s: float
) -> tuple[Solution, simulator.StepOutcome]:
    """Judge ``decision`` in the simulator and wrap it as a :class:`Solution`."""
    out = simulator.apply(inst, decision.action)
    sol = Solution(
        method=method,
        status=decision.status,
        action=np.asarray(decision.action, dtype=np.int64),
        final_server=out.final_server,
        cloud_load_bytes=out.cloud_load_bytes,
        bound_bytes=decision.bound_bytes,
        gap=relative_gap(out.cloud_load_bytes, decision.bound_bytes),
        metrics=out.metrics(),
        solve_time_s=solve_time_s,
        info=decision.info,
    )
    return sol, out


def judge(method, inst: Instance, step: int = 0) -> Solution:
    """Ask ``method`` (a :class:`~dtasm_opt.core.method.Method`) for a decision and judge it."""
    start = time.perf_counter()
    decision = method.decide(inst, step)
    elapsed = time.perf_counter() - start
    return from_decision(method.name, inst, decision, elapsed)[0]
