"""``dtasm_opt.evaluate``: measure any policy against the exact references on a stream.

    import dtasm_opt as dt
    stream = dt.generate_stream(dt.Scenario(users=200, servers=8), seed=1, steps=50)
    result = dt.evaluate(my_policy, stream)
    print(result.table())        # the policy, MILP-greedy, the hindsight bound
    result.records                # one StepRecord per (method, step)

``my_policy`` is a method name (``"danearest"``, ``"sb3:model.zip"``, ``"py:pkg.mod:make"``),
an object with ``decide(instance, step)`` (returning a Decision or the targets), a
Stable-Baselines3 model (anything with ``predict(observation)``), or a plain function
``instance -> targets``. Every method runs on the same stream from the same initial servers
(a paired comparison), the simulator judges every action, and the records are those a
rollout writes. The gap table compares each method's mean cloud load per step with the
reference method's (MILP-greedy by default) and with the certified hindsight bound over the
same steps, as differences in MB and as ratios (docs/design.md §8).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Decision
from dtasm_opt.core.stream import Stream
from dtasm_opt.core.units import BYTES_PER_MB
from dtasm_opt.errors import InputError
from dtasm_opt.experiments.rollout import Rollout
from dtasm_opt.rl.actions import scores_to_action
from dtasm_opt.rl.observation import observe
from dtasm_opt.solvers import registry

BOUND_LABEL = "hindsight bound"


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured."""

    records: list[dict]  # StepRecord rows, every method, every step
    gaps: list[dict]  # per method: cloud_mb, vs_reference_mb/ratio, vs_bound_mb/ratio
    bound_mb: float | None  # the certified bound's mean per step (None when not asked)
    reference: str | None

    def table(self) -> str:
        """The gap table as aligned text (MB per step of 2^20 bytes)."""
        ref = self.reference or "reference"
        heads = ["method", "cloud MB", f"- {ref} MB", f"/ {ref}", "- bound MB", "/ bound"]
        lines = [heads]
        for g in self.gaps:
            lines.append([g["method"]] + [_fmt(g.get(k)) for k in (
                "cloud_mb", "vs_reference_mb", "vs_reference_ratio", "vs_bound_mb",
                "vs_bound_ratio")])  # fmt: skip
        if self.bound_mb is not None:
            lines.append([BOUND_LABEL, _fmt(self.bound_mb), "", "", "", ""])
        widths = [max(len(line[i]) for line in lines) for i in range(len(heads))]
        return "\n".join(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )  # fmt: skip
            for line in lines
        )


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


class _FunctionPolicy:
    """A plain function, or a model with ``predict``, as a method."""

    def __init__(self, policy: Any, name: str):
        self.policy, self.name = policy, name

    def decide(self, inst: Instance, step: int) -> Decision:
        if callable(getattr(self.policy, "predict", None)):
            action, _ = self.policy.predict(observe(inst), deterministic=True)
            action = np.asarray(action)
            if action.shape == (inst.n_users, inst.n_servers):
                action = scores_to_action(action, inst.n_users, inst.n_servers)
        else:
            action = self.policy(inst)
        if isinstance(action, Decision):
            return action
        return Decision(action=np.asarray(action).reshape(-1), status="heuristic")


def as_method(policy: Any, settings: MethodSettings, name: str | None = None) -> Any:
    """A method name, a Method-like object, a model with ``predict`` or a function."""
    if isinstance(policy, str):
        return registry.make_method(policy, settings)
    if callable(getattr(policy, "decide", None)):
        if name is not None or not getattr(policy, "name", None):
            policy.name = name or type(policy).__name__
        return policy
    if callable(getattr(policy, "predict", None)) or callable(policy):
        label = name or str(getattr(policy, "__name__", type(policy).__name__))
        return _FunctionPolicy(policy, label)
    raise InputError(f"evaluate: {policy!r} is not a method name, a method, a model or a function")


def evaluate(
    policy: Any,
    stream: Stream,
    *,
    steps: int | None = None,
    seed: int = 0,
    reference: str | None = registry.REFERENCE,
    reference_time_limit_s: float | None = 10.0,
    bound: bool = True,
    window: int = 10,
    others: Sequence[str] = (),
    name: str | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Roll ``policy``, the ``reference`` method and ``others`` over ``stream`` and compare
    them with each other and with the certified hindsight bound (``bound``) of the same
    steps. ``steps`` defaults to the stream's length (the bound needs steps <= its length)."""
    steps = stream.n_steps if steps is None else steps
    settings = MethodSettings(seed=seed)
    roll = Rollout(stream, [], settings)
    method = as_method(policy, settings, name)
    roll.add_lane(method.name, method)
    for other in others:
        roll.add_lane(other, registry.make_method(other, settings))
    if reference is not None:
        limited = MethodSettings(seed=seed, time_limit_s=reference_time_limit_s)
        roll.add_lane(reference, registry.make_method(reference, limited))
    roll.check()
    rows: list[dict] = []
    while roll.next_step < steps:
        rows.extend(roll.step())
        if on_step is not None:
            on_step(roll.next_step, steps)
    bound_mb = _bound_mb(stream, steps, window) if bound else None
    gaps = _gaps(rows, [lane.name for lane in roll.lanes], reference, bound_mb)
    return Evaluation(rows, gaps, bound_mb, reference)


def _bound_mb(stream: Stream, steps: int, window: int) -> float:
    from dtasm_opt.solvers.exact.hindsight_bound import hindsight_bound

    if steps > stream.n_steps:
        raise InputError(f"evaluate: the bound covers the stream's {stream.n_steps} steps")
    total, _ = hindsight_bound(stream, steps, min(window, steps))
    return total / steps / BYTES_PER_MB


def _gaps(
    rows: list[dict], names: list[str], reference: str | None, bound_mb: float | None
) -> list[dict]:
    mean = {
        n: math.fsum(r["cloud_load_bytes"] for r in rows if r["method"] == n)
        / max(1, sum(r["method"] == n for r in rows))
        / BYTES_PER_MB
        for n in names
    }
    out = []
    for n in names:
        row: dict[str, Any] = {"method": n, "cloud_mb": mean[n]}
        if reference is not None and n != reference:
            row["vs_reference_mb"] = mean[n] - mean[reference]
            row["vs_reference_ratio"] = mean[n] / mean[reference] if mean[reference] else None
        if bound_mb is not None:
            row["vs_bound_mb"] = mean[n] - bound_mb
            row["vs_bound_ratio"] = mean[n] / bound_mb if bound_mb > 0 else None
        out.append(row)
    return out
