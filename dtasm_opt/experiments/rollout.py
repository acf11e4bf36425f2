"""Rollouts: every method on the same stream, one tidy CSV row per (method, step).

Semantics (docs/design.md §4, §5, §7): each method starts from the stream's initial servers; at
rollout step t the state is ``stream.instance(t, servers)``; past the stream's end a new
episode starts from step 0 *and* from the initial servers again. The simulator alone judges
each decision. Methods are built from one seed; random ones derive their own Generator from
(seed, name), so adding a method changes no other method's rows.

Methods run interleaved (every method does step t before any does t + 1) rather than one after
another: a cut-short run then holds the same steps for every method (still a paired
comparison), and one checkpoint between two steps covers all methods.

Resuming: a checkpoint ``<out>.state.json`` is written atomically between steps, after their
rows have been flushed, at most every CHECKPOINT_S seconds and at the end (each write costs a
few ms, as much as a step); it holds the number of rows it covers and per method the servers
after that step and the state of its Generator. ``--resume`` cuts the CSV back to those rows
(a kill may have left later rows or a torn line) and continues, so an interrupted run ends
with the same CSV as an uninterrupted one, apart from the timing column. Methods must carry no
state across steps other than a ``rng`` Generator attribute (true of every method so far).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np

from dtasm_opt.core import files, records, simulator
from dtasm_opt.core.fingerprint import stream_fingerprint
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.limits import MAX_STEPS, check_at_most
from dtasm_opt.core.locks import OutputLock
from dtasm_opt.core.method import Method, MethodSettings
from dtasm_opt.core.records import STEP_COLUMNS, StepRecord, stage2_fields
from dtasm_opt.core.stream import Stream
from dtasm_opt.core.units import BYTES_PER_MB
from dtasm_opt.errors import InputError
from dtasm_opt.solvers.registry import make_method

STATE_FORMAT = "dtasm-rollout-state/1"
CHECKPOINT_S = 1.0  # at most this much work is redone after a kill


@dataclass
class Lane:
    """One method's walk through the stream: the method and the servers before its next step."""

    name: str
    method: Method
    server: np.ndarray

    def state(self) -> dict:
        rng = getattr(self.method, "rng", None)
        return {
            "server": self.server.tolist(),
            "rng": rng.bit_generator.state if isinstance(rng, np.random.Generator) else None,
        }

    def restore(self, doc: dict, n_users: int, cloud: int) -> None:
        server = np.asarray(doc["server"])
        if server.shape != (n_users,) or server.dtype.kind not in "iu":
            raise ValueError(f"lane {self.name}: server is not {n_users} integers")
        if n_users and (server.min() < 0 or server.max() > cloud):
            raise ValueError(f"lane {self.name}: server index outside 0..{cloud}")
        self.server = server.astype(np.int64)
        rng = getattr(self.method, "rng", None)
        if doc.get("rng") is not None and isinstance(rng, np.random.Generator):
            rng.bit_generator.state = doc["rng"]


class Rollout:
    """The methods ``names`` on ``stream``, advanced one step at a time (all methods)."""

    def __init__(
        self,
        stream: Stream,
        names: Sequence[str],
        settings: MethodSettings,
        *,
        stage2: bool = False,
    ):
        self.stream = stream
        self.settings = settings
        self.stage2 = stage2  # rows carry records.STAGE2_COLUMNS
        self.lanes: list[Lane] = []
        for n in names:
            self.add_lane(n, make_method(n, settings))
        self.next_step = 0
        self._fingerprint = stream_fingerprint(stream)  # hashing costs ms: once per rollout

    def check(self) -> None:
        """Ask every method whether it can run on this stream (a trained policy checks the
        system it was trained on) before anything is written."""
        first = self.stream.instance(0)
        for lane in self.lanes:
            check = getattr(lane.method, "check", None)
            if callable(check):
                check(first)

    def add_lane(self, name: str, method: Method) -> None:
        """Roll ``method`` too, under the label ``name`` (its rows' method column)."""
        self.lanes.append(Lane(name, method, self.stream.initial_server.copy()))

    def make_row(self, record: StepRecord, inst: Instance, t: int) -> dict:
        """The CSV row of ``record``; subclasses add columns about ``inst``, the state the
        method faced at step ``t``."""
        return record.row()

    def step(self) -> Iterator[dict]:
        """Run step ``next_step`` for every method, yielding each row as soon as it exists."""
        t = self.next_step
        for lane in self.lanes:
            yield self._step_lane(lane, t)
        self.next_step += 1

    def _step_lane(self, lane: Lane, t: int) -> dict:
        k = t % self.stream.n_steps
        if k == 0:  # a new episode: the stream restarts from its initial servers
            lane.server = self.stream.initial_server.copy()
        inst = self.stream.instance(t, lane.server)
        start = time.perf_counter()
        decision = lane.method.decide(inst, t)
        elapsed = time.perf_counter() - start
        out = simulator.apply(inst, decision.action)
        lane.server = out.final_server
        record = StepRecord.judged(
            lane.name,
            t,
            k,
            out,
            status=decision.status,
            bound_bytes=decision.bound_bytes,
            decision_time_s=elapsed,
        )
        row = self.make_row(record, inst, t)
        if self.stage2:
            row.update(stage2_fields(decision.info))
        return row

    def identity(self) -> dict:
        """What a checkpoint must match to be resumed by this rollout."""
        return {
            "stream": self._fingerprint,
            "methods": [lane.name for lane in self.lanes],
            "settings": list(astuple(self.settings)),
        }

    def state(self) -> dict:
        return {
            "format": STATE_FORMAT,
            **self.identity(),
            "next_step": self.next_step,
            "rows": self.next_step * len(self.lanes),
            "lanes": {lane.name: lane.state() for lane in self.lanes},
        }

    def restore(self, doc: object, where: str) -> None:
        """Continue from checkpoint ``doc``; refuse one written by another rollout."""
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise InputError(f"{where}: not a rollout checkpoint ({STATE_FORMAT})")
        for key, want in self.identity().items():
            if doc.get(key) != want:
                raise InputError(
                    f"{where}: written for another {key} ({doc.get(key)!r}); it cannot be "
                    f"resumed with these arguments"
                )
        try:
            for lane in self.lanes:
                lane.restore(doc["lanes"][lane.name], self.stream.n_users, self.stream.n_servers)
            next_step = doc["next_step"]
            if isinstance(next_step, bool) or not isinstance(next_step, int) or next_step < 0:
                raise ValueError(f"next_step {next_step!r} is not an integer >= 0")
            self.next_step = next_step
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: damaged checkpoint ({exc})") from None


def state_path(out: str | Path) -> Path:
    return Path(f"{out}.state.json")


def run(
    stream: Stream,
    names: Sequence[str],
    out: str | Path,
    *,
    steps: int | None = None,
    settings: MethodSettings | None = None,
    resume: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    checkpoint_s: float | None = None,
) -> int:
    """Roll ``names`` over ``stream`` for ``steps`` steps into the CSV ``out``.

    Returns the number of rows written by this call. With ``resume`` an existing CSV and its
    checkpoint are continued; without it an existing CSV is refused. A checkpoint is written
    at most every ``checkpoint_s`` seconds (default CHECKPOINT_S; 0: after every step).
    ``on_step(done, steps)`` is called once before the first step and after every step
    (progress display).
    """
    steps = stream.n_steps if steps is None else steps
    check_at_most(steps, MAX_STEPS, "steps")
    roll = Rollout(stream, names, settings or MethodSettings())
    roll.check()  # a method that cannot run on this stream is refused before any file
    out, ckpt = Path(out), state_path(out)
    if out.is_dir():
        raise InputError(f"{out}: is a directory, expected a CSV file")
    if out.exists() and not resume:
        raise InputError(f"{out}: exists; pass --resume to continue it, or delete it")
    with OutputLock(out):
        return _run_locked(roll, out, ckpt, steps, on_step, checkpoint_s)


def _run_locked(
    roll: Rollout,
    out: Path,
    ckpt: Path,
    steps: int,
    on_step: Callable[[int, int], None] | None,
    checkpoint_s: float | None,
) -> int:
    if out.exists():
        _prepare_resume(roll, out, ckpt)
    else:
        _save(ckpt, roll)  # the checkpoint exists before any row does
    start = roll.next_step
    report = on_step or (lambda done, total: None)
    report(min(start, steps), steps)
    every = CHECKPOINT_S if checkpoint_s is None else checkpoint_s
    saved = time.monotonic()
    with records.RowWriter(out, STEP_COLUMNS, append=out.exists()) as writer:
        while roll.next_step < steps:
            for row in roll.step():
                writer.write(row)  # flushed: on disk (page cache) before the checkpoint
            report(roll.next_step, steps)
            if roll.next_step == steps or time.monotonic() - saved >= every:
                _save(ckpt, roll)
                saved = time.monotonic()
    return max(0, steps - start) * len(roll.lanes)


def _save(ckpt: Path, roll: Rollout) -> None:
    files.write_text_atomic(ckpt, json.dumps(roll.state()) + "\n")


def _prepare_resume(roll: Rollout, out: Path, ckpt: Path) -> None:
    if not ckpt.exists():
        raise InputError(f"{out}: no checkpoint {ckpt.name} beside it; cannot resume, delete it")
    roll.restore(files.read_json(ckpt), str(ckpt))
    # rows written after the checkpoint (and a torn last line) are dropped and redone
    records.resume_rows(out, STEP_COLUMNS, roll.next_step * len(roll.lanes))


def summarize(rows: Iterable[dict]) -> list[dict]:
    """Per method (in order of appearance): the run's means, with downtime pooled over all
    migrated users (total downtime / total migrated), loads in MB of 2^20 bytes."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r["method"]), []).append(r)
    table = []
    for name, rs in groups.items():
        migrated = _total(rs, "migrated")
        table.append(
            {
                "method": name,
                "steps": len(rs),
                "cloud_load_mb": _total(rs, "cloud_load_bytes") / len(rs) / BYTES_PER_MB,
                "downtime_ms": 1e3 * _total(rs, "total_downtime_s") / migrated if migrated else 0.0,
                "migrated": migrated / len(rs),
                "migration_failed": _total(rs, "migration_failed") / len(rs),
                "rejected": _total(rs, "rejected") / len(rs),
                "users_on_edge": _total(rs, "users_on_edge") / len(rs),
                "decision_ms": 1e3 * _total(rs, "decision_time_s") / len(rs),
            }
        )
    return table


def _total(rows: Sequence[dict], column: str) -> float:
    return math.fsum(float(r[column]) for r in rows)


def format_summary(table: Sequence[dict]) -> str:
    """The summary as an aligned text table."""
    heads = ["method", "steps", "cloud MB", "downtime ms", "migrated", "failed", "rejected"]
    heads += ["on edge", "decide ms"]
    lines = [heads]
    for s in table:
        lines.append(
            [s["method"], str(s["steps"]), f"{s['cloud_load_mb']:.2f}", f"{s['downtime_ms']:.1f}"]
            + [f"{s[k]:.2f}" for k in ("migrated", "migration_failed", "rejected")]
            + [f"{s['users_on_edge']:.2f}", f"{s['decision_ms']:.3f}"]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(heads))]
    fmt = [f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths)]
    return "\n".join(
        "  ".join(f.format(c) for f, c in zip(fmt, line, strict=True)) for line in lines
    )
