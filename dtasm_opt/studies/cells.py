"""One study cell, (method, seed, sweep value) -> rows: a pure function of the spec and the cell.

Both backends (a local process pool, Ray tasks) call :func:`run_cell_safe` and get the same
rows apart from the timing columns, because everything a cell draws comes from its seed:
the stream from ``generate_stream(scenario, seed)`` (so every method of a seed faces the same
exogenous states: paired comparisons) and the methods' generators from ``MethodSettings.seed``.

What a cell does depends on its method's role in the registry:

- policy: a rollout over the stream (:class:`~dtasm_opt.experiments.rollout.Rollout`),
  optionally also solving each step's exact problem from the state the method is in
  (``per_step_optimum``);
- trainer: the agent is trained in memory and its training steps are the rows (the learning
  curve); with ``eval_steps`` the trained agent is then rolled out greedily (label
  ``<label>-greedy``);
- bound: one row per window of the certified hindsight bound.

Solve studies solve step 0 of the seed's stream once per policy.

A rollout cell given a ``partial`` path (the local backend's ``parts/<cell>.partial.json``)
saves its rows so far and the rollout's state there (atomically, at most every
``PARTIAL_S`` seconds) and, when run again, continues from it: an interrupted cell of an
exact method (40 minutes for 500 engine steps at U = 200) loses at most ``PARTIAL_S`` of
work, and ends with the rows an uninterrupted run gives (apart from the timing columns).
Training cells start over (their agent is not saved); so do the greedy rollouts after them.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np

from dtasm_opt.core import files, records, simulator
from dtasm_opt.core.generator import generate_stream
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import Method, MethodSettings
from dtasm_opt.core.records import SOLVE_COLUMNS, SolveRecord, StepRecord
from dtasm_opt.core.solution import relative_gap
from dtasm_opt.core.stream import Stream
from dtasm_opt.core.wording import counted
from dtasm_opt.errors import InputError
from dtasm_opt.experiments.rollout import Rollout
from dtasm_opt.solvers import registry
from dtasm_opt.studies.spec import (
    DISCOUNT_OPTION,
    Cell,
    MethodSpec,
    Spec,
    format_value,
    scenario_of,
)

GREEDY_SUFFIX = "-greedy"
PARTIAL_FORMAT = "dtasm-study-partial/1"
PARTIAL_S = 30.0  # at most this much of a rollout cell's work is redone after a kill


# The columns that say how an exact solve ended: the method's two stages and the per-step
# optimum beside it.
STATUS_COLUMNS = ("status", "stage2_status", "step_optimum_status")


def stopped_by_clock(rows: list[dict]) -> int:
    """How many of ``rows`` have a solve that a wall-clock limit stopped ("time_limit"): a
    safety net that binds makes the row depend on the machine and its load, so another run
    may not repeat it, nor (for the method's own stages) the states after it."""
    return sum(any(r.get(c) == "time_limit" for c in STATUS_COLUMNS) for r in rows)


def clock_note(stopped: int, kind: str) -> str:
    """What a cell's line and ``study --status`` add for ``stopped`` such rows ("" for none);
    a solve study's rows are solves, the others' steps."""
    if not stopped:
        return ""
    noun = "solve" if kind == "solve" else "step"
    return f"; {counted(stopped, noun)} stopped by a wall-clock limit (may not repeat)"


def role(m: MethodSpec) -> str:
    return registry.study_entry(m.name).role


def columns(spec: Spec) -> tuple[str, ...]:
    """The CSV columns of ``spec``'s rows: study, the sweep axis, seed, then the records."""
    head = ("study",) + ((spec.axis,) if spec.axis else ()) + ("seed",)
    if spec.kind == "solve":
        return head + SOLVE_COLUMNS
    roles = {role(m) for m in spec.methods}
    return head + records.step_columns(
        training=registry.TRAINER in roles,
        optimum=spec.per_step_optimum,
        windows=registry.BOUND in roles,
        stage2=spec.stage2_columns is True,
    )


def bound_steps(spec: Spec, m: MethodSpec) -> int:
    """Steps of a bound cell: the stream's first steps (a bound is over the stream's own
    steps, so it stops at the stream's end)."""
    return min(m.steps(spec.steps), spec.stream_steps or spec.steps)


def expected_rows(spec: Spec, cell: Cell) -> int:
    m = spec.method(cell.method)
    if spec.kind == "solve":
        return 1
    if role(m) == registry.BOUND:
        steps = bound_steps(spec, m)
        return -(-steps // make_bound(m, cell.seed).window(steps))
    return m.steps(spec.steps) + int(m.options.get("eval_steps", 0))


def check_spec(spec: Spec) -> None:
    """Everything a cell would refuse, refused before any work: each method is built with its
    options (a bad backend, tie-break, TD3 hyper-parameter, teacher or bound option), and each
    policy that can check a system (a trained ``td3:PATH``) checks every seed's and sweep
    value's system. Errors name the method label."""
    for m in spec.methods:
        try:
            _check_method(spec, m)
        except InputError as exc:
            raise InputError(f"method {m.label!r}: {exc}") from None


def _check_method(spec: Spec, m: MethodSpec) -> None:
    kind = role(m)
    seed = spec.seeds[0]
    if kind == registry.BOUND:
        make_bound(m, seed)
        return
    if kind == registry.TRAINER:
        entry = registry.study_entry(m.name)
        for value in spec.values or (None,):
            context: dict[str, object] = {"seed": seed, "threads": int(m.options.get("threads", 1))}
            if spec.axis == "discount":
                context[DISCOUNT_OPTION] = value
            for cls in entry.option_classes():
                options_of(m, cls, **context)
        return
    method = registry.make_method(m.name, settings_of(m, seed))
    check = getattr(method, "check", None)
    if callable(check):
        for value in spec.values or (None,):
            for s in spec.seeds:
                stream = generate_stream(scenario_of(spec, Cell(m.label, s, value)), s, steps=1)
                check(stream.instance(0))


Progress = Callable[[int], None]  # called with the rows a cell has made so far


def run_cell_safe(
    spec: Spec, cell: Cell, progress: Progress | None = None, partial: Path | None = None
) -> tuple[bool, object]:
    """(True, rows) or (False, message): a failed cell must not stop the others, and an
    exception with a traceback object may not pickle across processes."""
    try:
        return True, run_cell(spec, cell, progress, partial)
    except InputError as exc:
        return False, str(exc)
    except Exception as exc:  # a bug or a solver failure in one cell: report, go on
        tail = traceback.format_exc(limit=-3).strip().splitlines()
        return False, f"{type(exc).__name__}: {exc} ({' / '.join(tail[-4:])})"


def run_cell(
    spec: Spec, cell: Cell, progress: Progress | None = None, partial: Path | None = None
) -> list[dict]:
    """The rows of ``cell``, each with the study, seed and sweep columns; a rollout cell
    saves its progress to ``partial`` and resumes from it (the module's docstring)."""
    m = spec.method(cell.method)
    stream_steps = 1 if spec.kind == "solve" else spec.stream_steps_of()
    stream = generate_stream(scenario_of(spec, cell), cell.seed, steps=stream_steps)
    kind = role(m)
    if spec.kind == "solve":
        rows = [_solve(m, cell, stream.instance(0))]
    elif kind == registry.TRAINER:
        rows = _train(spec, m, cell, stream, progress)
    elif kind == registry.BOUND:
        rows = _bound(spec, m, cell, stream)
    else:
        method = registry.make_method(m.name, settings_of(m, cell.seed))
        saved = PartialFile(partial, spec.cell_fingerprint(cell)) if partial else None
        rows = _roll(spec, cell, stream, method, m.steps(spec.steps), m.label, progress, 0, saved)
    head: dict[str, object] = {"study": spec.name, "seed": cell.seed}
    if spec.axis:
        head[spec.axis] = format_value(cell.value)
    return [{**head, **r} for r in rows]


def settings_of(m: MethodSpec, seed: int) -> MethodSettings:
    """The shared settings of a method: its spec keys that are MethodSettings fields."""
    names = {f.name for f in fields(MethodSettings)} - {"seed"}
    return MethodSettings(seed=seed, **{k: v for k, v in m.options.items() if k in names})


def options_of(m: MethodSpec, cls: type, **context: object) -> object:
    """An option object of class ``cls`` from the method's spec keys; ``context`` gives the
    fields the cell sets itself (the seed, a swept value)."""
    names = {f.name for f in fields(cls)}
    kw = {k: v for k, v in m.options.items() if k in names}
    kw.update({k: v for k, v in context.items() if k in names})
    return cls(**kw)


class _WithOptimum(Rollout):
    """A rollout that also solves each step's exact problem (the registry's reference method)
    on the very instance the method faced, from the method's own state; the optimum is the
    simulator's evaluation of the solver's action, with its proven bound and status."""

    def __init__(self, *args, optimum: Method, **kwargs):
        super().__init__(*args, **kwargs)
        self.optimum = optimum

    def make_row(self, record: StepRecord, inst: Instance, t: int) -> dict:
        decision = self.optimum.decide(inst, t)
        return record.row(
            step_optimum_bytes=simulator.apply(inst, decision.action).cloud_load_bytes,
            step_optimum_bound_bytes=decision.bound_bytes,
            step_optimum_status=decision.status,
        )


def _roll(
    spec: Spec,
    cell: Cell,
    stream: Stream,
    method: Method,
    steps: int,
    label: str,
    progress: Progress | None = None,
    done: int = 0,
    saved: PartialFile | None = None,
) -> list[dict]:
    settings = MethodSettings(seed=cell.seed)
    stage2 = spec.stage2_columns is True
    if spec.per_step_optimum:
        # Only the load-optimal stage: the tie-break stage changes no cloud load.
        limit = MethodSettings(
            seed=cell.seed,
            time_limit_s=spec.optimum_time_limit_s,
            node_limit=spec.optimum_node_limit,
            second_stage="none",
        )
        optimum = registry.make_method(registry.REFERENCE, limit)
        roll: Rollout = _WithOptimum(stream, [], settings, optimum=optimum, stage2=stage2)
    else:
        roll = Rollout(stream, [], settings, stage2=stage2)
    roll.add_lane(label, method)
    rows = saved.resume(roll) if saved is not None else []
    last = time.monotonic()
    while roll.next_step < steps:
        rows.extend(roll.step())
        if progress is not None:
            progress(done + len(rows))
        if saved is not None and roll.next_step < steps and time.monotonic() - last >= PARTIAL_S:
            saved.save(roll, rows)
            last = time.monotonic()
    return rows


class PartialFile:
    """A rollout cell's rows so far and its rollout's state, in one JSON file written
    atomically (``PARTIAL_FORMAT``). A file of another cell (its fingerprint) is ignored and
    the cell starts over; a damaged one fails the cell, naming the file to delete."""

    def __init__(self, path: Path, fingerprint: str):
        self.path, self.fingerprint = Path(path), fingerprint

    def read(self) -> tuple[list[dict], dict] | None:
        """The saved rows and rollout state; None where there is no file or it is another
        cell's (``study --status`` reads it this way too, beside the run)."""
        if not self.path.exists():
            return None
        doc = files.read_json(self.path)
        if not isinstance(doc, dict) or doc.get("format") != PARTIAL_FORMAT:
            raise self._damaged(f"not a {PARTIAL_FORMAT} file")
        if doc.get("cell") != self.fingerprint:
            return None
        rows, state = doc.get("rows"), doc.get("state")
        if not (isinstance(rows, list) and isinstance(state, dict)):
            raise self._damaged("no rows or no state")
        if len(rows) != state.get("rows") or not all(isinstance(r, dict) for r in rows):
            raise self._damaged(f"{len(rows)} rows where its state covers {state.get('rows')}")
        return rows, state

    def resume(self, roll: Rollout) -> list[dict]:
        saved = self.read()
        if saved is None:
            return []
        rows, state = saved
        roll.restore(state, str(self.path))  # InputError where it does not fit this rollout
        return rows

    def _damaged(self, why: str) -> InputError:
        return InputError(f"{self.path}: damaged ({why}); delete it to recompute the cell")

    def save(self, roll: Rollout, rows: list[dict]) -> None:
        doc = {"format": PARTIAL_FORMAT, "cell": self.fingerprint, "state": roll.state()}
        doc["rows"] = rows
        files.write_text_atomic(self.path, json.dumps(doc, default=_plain) + "\n")


def _plain(value: object) -> object:
    """numpy scalars as Python numbers (a row's values, for JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} in a row")


def _train(
    spec: Spec, m: MethodSpec, cell: Cell, stream: Stream, progress: Progress | None = None
) -> list[dict]:
    entry = registry.study_entry(m.name)
    context: dict[str, object] = {"seed": cell.seed, "threads": int(m.options.get("threads", 1))}
    if spec.axis == "discount":
        context[DISCOUNT_OPTION] = float(cell.value)  # type: ignore[arg-type]
    options = [options_of(m, cls, **context) for cls in entry.option_classes()]
    trainer = registry.factory(entry)(stream, *options)
    steps = m.steps(spec.steps)
    rows = []
    for step in trainer.run(steps):
        rows.append(step.row(method=m.label))
        if progress is not None:
            progress(len(rows))
    evals = int(m.options.get("eval_steps", 0))
    if evals:
        label = m.label + GREEDY_SUFFIX
        rows += _roll(spec, cell, stream, trainer.policy(label), evals, label, progress, len(rows))
    return rows


def make_bound(m: MethodSpec, seed: int):
    entry = registry.study_entry(m.name)
    options = [options_of(m, cls) for cls in entry.option_classes()]
    return registry.factory(entry)(m.label, settings_of(m, seed), *options)


def _bound(spec: Spec, m: MethodSpec, cell: Cell, stream: Stream) -> list[dict]:
    """One row per window: ``cloud_load_bytes`` is the window's proven lower bound on the
    cloud load of any policy over its ``window_steps`` steps (only window sums are bounds)."""
    windows = make_bound(m, cell.seed).windows(stream, bound_steps(spec, m))
    return [
        {
            "method": m.label,
            "step": w.start,
            "stream_step": w.start,
            "cloud_load_bytes": w.bound_bytes,
            "status": w.status,
            "window_steps": w.steps,
            "decision_time_s": w.solve_time_s,
        }
        for w in windows
    ]


def _solve(m: MethodSpec, cell: Cell, inst: Instance) -> dict:
    method = registry.make_method(m.name, settings_of(m, cell.seed))
    start = time.perf_counter()
    decision = method.decide(inst, 0)
    elapsed = time.perf_counter() - start
    out = simulator.apply(inst, decision.action)
    info = decision.info
    return SolveRecord(
        method=m.label,
        step=0,
        users=inst.n_users,
        servers=inst.n_servers,
        status=decision.status,
        cloud_load_bytes=out.cloud_load_bytes,
        bound_bytes=decision.bound_bytes,
        gap=relative_gap(out.cloud_load_bytes, decision.bound_bytes),
        migrated=out.migrated,
        rejected=out.rejected,
        users_on_edge=out.users_on_edge,
        build_s=info.get("build_s"),
        solve_s=info.get("solve_s", info.get("stage1_s")),
        stage2_s=info.get("stage2_s"),
        decision_time_s=elapsed,
    ).row()
