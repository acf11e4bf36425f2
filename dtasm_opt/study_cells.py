"""One study cell, (method, seed, sweep value) -> rows: a pure function of the spec and the cell.

Both backends (a local process pool, Ray tasks) call :func:`run_cell_safe` and get the same
rows apart from the timing columns, because everything a cell draws comes from its seed:
the stream from ``generate_stream(scenario, seed)`` (so every method of a seed faces the same
exogenous states: paired comparisons) and the methods' generators from ``MethodSettings.seed``.

- Rollout cells run one method over the stream with :class:`dtasm_opt.rollout.Rollout`
  (optionally also solving each step's exact problem from the state the method is in:
  ``per_step_optimum``).
- ``td3`` cells train the agent with :func:`dtasm_opt.train.train` and record its training
  steps (the learning curve); with ``eval_steps`` the trained agent is then rolled out
  greedily (method label ``<label>-greedy``).
- Solve cells solve step 0 of the seed's stream once.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import fields
from pathlib import Path

from dtasm_opt import records, rollout, simulator
from dtasm_opt.errors import InputError
from dtasm_opt.methods import Method, MethodSettings, make_method
from dtasm_opt.solution import relative_gap
from dtasm_opt.study_spec import BOUND, TD3, Cell, MethodSpec, Spec, format_value, scenario_of

OPTIMUM_COLUMNS = ("step_optimum_bytes", "step_optimum_bound_bytes", "step_optimum_status")
TD3_COLUMNS = ("phase", "critic_loss", "actor_loss")
SOLVE_COLUMNS = (
    "method",
    "step",
    "users",
    "servers",
    "status",
    "cloud_load_bytes",
    "bound_bytes",
    "gap",
    "migrated",
    "rejected",
    "users_on_edge",
    "build_s",
    "solve_s",
    "stage2_s",
    "decision_time_s",
)
TIMING_COLUMNS = ("decision_time_s", "build_s", "solve_s", "stage2_s")
GREEDY_SUFFIX = "-greedy"


def columns(spec: Spec) -> tuple[str, ...]:
    """The CSV columns of ``spec``'s rows: study, the sweep axis, seed, then the records."""
    head = ("study",) + ((spec.axis,) if spec.axis else ()) + ("seed",)
    if spec.kind == "solve":
        return head + SOLVE_COLUMNS
    cols = head + rollout.COLUMNS
    if spec.per_step_optimum:
        cols += OPTIMUM_COLUMNS
    if any(m.name == TD3 for m in spec.methods):
        cols += TD3_COLUMNS
    if any(m.name == BOUND for m in spec.methods):
        cols += ("window_steps",)
    return cols


def bound_steps(spec: Spec, m: MethodSpec) -> tuple[int, int]:
    """(steps, window) of a hindsight-bound cell: the first steps of the stream (a bound is
    over the stream's own steps, so it stops at the stream's end)."""
    steps = min(m.steps(spec.steps), spec.stream_steps or spec.steps)
    return steps, int(m.options.get("window", steps))


def expected_rows(spec: Spec, cell: Cell) -> int:
    m = spec.method(cell.method)
    if spec.kind == "solve":
        return 1
    if m.name == BOUND:
        steps, window = bound_steps(spec, m)
        return -(-steps // window)
    return m.steps(spec.steps) + int(m.options.get("eval_steps", 0))


def run_cell_safe(spec: Spec, cell: Cell) -> tuple[bool, object]:
    """(True, rows) or (False, message): a failed cell must not stop the others, and an
    exception with a traceback object may not pickle across processes."""
    try:
        return True, run_cell(spec, cell)
    except InputError as exc:
        return False, str(exc)
    except Exception as exc:  # a bug or a solver failure in one cell: report, go on
        tail = traceback.format_exc(limit=-3).strip().splitlines()
        return False, f"{type(exc).__name__}: {exc} ({' / '.join(tail[-4:])})"


def run_cell(spec: Spec, cell: Cell) -> list[dict]:
    """The rows of ``cell``, each with the study, seed and sweep columns."""
    m = spec.method(cell.method)
    scenario = scenario_of(spec, cell)
    from dtasm_opt.generator import generate_stream

    stream_steps = 1 if spec.kind == "solve" else spec.stream_steps or spec.steps
    stream = generate_stream(scenario, cell.seed, steps=stream_steps)
    if spec.kind == "solve":
        rows = [_solve(m, cell, stream.instance(0))]
    elif m.name == TD3:
        rows = _train(spec, m, cell, stream)
    elif m.name == BOUND:
        rows = _bound(spec, m, stream)
    else:
        rows = _roll(spec, m, cell, stream, m.steps(spec.steps), m.name, m.label)
    head = {"study": spec.name, "seed": cell.seed}
    if spec.axis:
        head[spec.axis] = format_value(cell.value)
    return [{**head, **r} for r in rows]


def settings_of(m: MethodSpec, seed: int) -> MethodSettings:
    o = m.options
    return MethodSettings(
        seed=seed,
        time_limit_s=o.get("time_limit_s"),
        gap=float(o.get("gap", 0.0)),
        threads=int(o.get("threads", 1)),
    )


def build_method(m: MethodSpec, name: str, settings: MethodSettings) -> Method:
    """The registry's method, or MILP-greedy with its own keyword options."""
    kw = {
        k: m.options[k]
        for k in ("backend", "second_stage", "second_stage_time_limit_s")
        if k in m.options
    }
    if name == "milp" and kw:
        from dtasm_opt.solvers.milp import make_milp

        return make_milp(name, settings, **kw)
    return make_method(name, settings)


class _Optimum(rollout.Rollout):
    """A rollout that also solves each step's exact problem (``milp``) on the very instance
    the method faced, from the method's own state; the optimum is the simulator's
    evaluation of the solver's action, with its proven bound and status."""

    def __init__(self, *args, optimum: Method, **kwargs):
        super().__init__(*args, **kwargs)
        self.optimum = optimum

    def _step_lane(self, lane: rollout.Lane, t: int) -> dict:
        # The state the method is about to face (Rollout._step_lane restarts episodes so).
        first = t % self.stream.n_steps == 0
        inst = self.stream.instance(t, self.stream.initial_server if first else lane.server)
        row = super()._step_lane(lane, t)
        decision = self.optimum.decide(inst, t)
        row["step_optimum_bytes"] = simulator.apply(inst, decision.action).cloud_load_bytes
        row["step_optimum_bound_bytes"] = decision.bound_bytes
        row["step_optimum_status"] = decision.status
        return row


def _roll(spec: Spec, m: MethodSpec, cell: Cell, stream, steps: int, name: str, label: str):
    settings = settings_of(m, cell.seed)
    if spec.per_step_optimum:
        from dtasm_opt.solvers.milp import make_milp

        # Only the load-optimal stage: the fewest-migrations stage changes no cloud load.
        limit = MethodSettings(seed=cell.seed, time_limit_s=spec.optimum_time_limit_s)
        opt = make_milp("milp", limit, second_stage="none")
        roll = _Optimum(stream, [name], settings, optimum=opt)
    else:
        roll = rollout.Rollout(stream, [name], settings)
    roll.lanes[0].method = build_method(m, name, settings)
    rows = []
    while roll.next_step < steps:
        for row in roll.step():
            row["method"] = label
            rows.append(row)
    return rows


def _train(spec: Spec, m: MethodSpec, cell: Cell, stream) -> list[dict]:
    try:
        from dtasm_opt.solvers.td3 import TD3Config
        from dtasm_opt.train import train
    except ImportError as exc:
        raise InputError(f"method {m.label!r}: TD3 training is not available ({exc})") from None
    known = {f.name for f in fields(TD3Config)}
    kw = {k: v for k, v in m.options.items() if k in known}
    for key in ("hidden", "shared_hidden"):  # TOML arrays -> the config's tuples
        if key in kw:
            kw[key] = tuple(kw[key])
    if spec.axis == "discount":
        kw["gamma"] = float(cell.value)
    cfg = TD3Config(**{**kw, "seed": cell.seed, "threads": int(m.options.get("threads", 1))})
    steps = m.steps(spec.steps)
    with tempfile.TemporaryDirectory(prefix="dtasm-study-td3-") as tmp:
        train(
            stream,
            cfg,
            tmp,
            steps,
            checkpoint_every=steps,
            warm_start_steps=int(m.options.get("warm_start_steps", 0)),
            teacher=str(m.options.get("teacher", "danearest")),
            teacher_time_limit_s=m.options.get("teacher_time_limit_s"),
            progress=False,
        )
        rows = [
            _train_row(r, m.label, stream.n_steps)
            for r in records.read_rows(Path(tmp) / "steps.csv")
        ]
        if len(rows) != steps:
            raise RuntimeError(f"training logged {len(rows)} steps, expected {steps}")
        evals = int(m.options.get("eval_steps", 0))
        if evals:
            agent = f"td3:{Path(tmp) / 'last.pt'}"
            rows += _roll(spec, m, cell, stream, evals, agent, m.label + GREEDY_SUFFIX)
    return rows


def _train_row(r: dict, label: str, stream_steps: int) -> dict:
    """A training-log row in the study's columns (numbers parsed back from the CSV text)."""
    step, migrated = int(r["step"]), int(r["migrated"])
    mean_downtime = float(r["mean_downtime_s"])
    return {
        "method": label,
        "step": step,
        "stream_step": step % stream_steps,
        "cloud_load_bytes": float(r["cloud_load_bytes"]),
        "mean_downtime_s": mean_downtime,
        "total_downtime_s": mean_downtime * migrated,
        "migrated": migrated,
        "migration_failed": int(r["migration_failed"]),
        "rejected": int(r["rejected"]),
        "users_on_edge": int(r["users_on_edge"]),
        "decision_time_s": float(r["decision_time_s"]),
        "phase": r.get("phase", ""),
        "critic_loss": r.get("critic_loss", ""),
        "actor_loss": r.get("actor_loss", ""),
    }


def _solve(m: MethodSpec, cell: Cell, inst) -> dict:
    method = build_method(m, m.name, settings_of(m, cell.seed))
    start = time.perf_counter()
    decision = method.decide(inst, 0)
    elapsed = time.perf_counter() - start
    out = simulator.apply(inst, decision.action)
    info = decision.info
    return {
        "method": m.label,
        "step": 0,
        "users": inst.n_users,
        "servers": inst.n_servers,
        "status": decision.status,
        "cloud_load_bytes": out.cloud_load_bytes,
        "bound_bytes": decision.bound_bytes,
        "gap": relative_gap(out.cloud_load_bytes, decision.bound_bytes),
        "migrated": out.migrated,
        "rejected": out.rejected,
        "users_on_edge": out.users_on_edge,
        "build_s": info.get("build_s"),
        "solve_s": info.get("solve_s", info.get("stage1_s")),
        "stage2_s": info.get("stage2_s"),
        "decision_time_s": elapsed,
    }


def _bound(spec: Spec, m: MethodSpec, stream) -> list[dict]:
    """One row per window: ``cloud_load_bytes`` is the window's proven lower bound on the
    cloud load of any policy over its ``window_steps`` steps (only window sums are bounds)."""
    try:
        from dtasm_opt.models.hindsight import hindsight_bound
    except ImportError as exc:
        msg = f"method {m.label!r}: the hindsight bound is not available ({exc})"
        raise InputError(msg) from None
    steps, window = bound_steps(spec, m)
    opts = {
        k: m.options[k]
        for k in ("mip", "lookback", "lp_solver", "time_limit_s", "threads")
        if k in m.options
    }
    _total, windows = hindsight_bound(stream, steps, window, **opts)
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
