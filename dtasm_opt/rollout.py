"""Rollouts: every method on the same stream, one tidy CSV row per (method, step).

    python -m dtasm_opt.rollout stream.json.gz --methods nearest,danearest --out results.csv

Semantics (DESIGN sections 4, 5, 7): each method starts from the stream's initial servers; at
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

import hashlib
import json
import math
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dtasm_opt import cli, files, records, simulator
from dtasm_opt.errors import InputError
from dtasm_opt.methods import Method, MethodSettings, make_method, parse_methods
from dtasm_opt.simulator import BYTES_PER_MB
from dtasm_opt.solution import relative_gap
from dtasm_opt.stream import EXOGENOUS, Stream

PROG = "python -m dtasm_opt.rollout"
STATE_FORMAT = "dtasm-rollout-state/1"
COLUMNS = (
    "method",
    "step",
    "stream_step",
    "cloud_load_bytes",
    "mean_downtime_s",
    "total_downtime_s",
    "migrated",
    "migration_failed",
    "rejected",
    "users_on_edge",
    "status",
    "bound_bytes",
    "gap",
    "decision_time_s",
)
TIMING_COLUMNS = ("decision_time_s",)
CHECKPOINT_S = 1.0  # at most this much work is redone after a kill


def stream_fingerprint(stream: Stream) -> str:
    """A digest of everything in ``stream`` that a rollout depends on (checked on resume)."""
    h = hashlib.sha256()
    arrays = [getattr(stream.servers, f.name) for f in fields(stream.servers)]
    arrays += [getattr(stream.apps, f.name) for f in fields(stream.apps)]
    arrays += [stream.app, stream.latency_limit_s, stream.initial_server]
    arrays += [getattr(stream, name) for name in EXOGENOUS]
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr(stream.xi_s).encode())
    return h.hexdigest()


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

    def restore(self, doc: dict) -> None:
        self.server = np.asarray(doc["server"], dtype=np.int64)
        if doc.get("rng") is not None:
            self.method.rng.bit_generator.state = doc["rng"]


class Rollout:
    """The methods ``names`` on ``stream``, advanced one step at a time (all methods)."""

    def __init__(self, stream: Stream, names: Sequence[str], settings: MethodSettings):
        self.stream = stream
        self.settings = settings
        self.lanes = [
            Lane(n, make_method(n, settings), stream.initial_server.copy()) for n in names
        ]
        self.next_step = 0
        self._fingerprint = stream_fingerprint(stream)  # hashing costs ms: once per rollout

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
        return {
            "method": lane.name,
            "step": t,
            "stream_step": k,
            "cloud_load_bytes": out.cloud_load_bytes,
            "mean_downtime_s": out.mean_downtime_s,
            "total_downtime_s": out.total_downtime_s,
            "migrated": out.migrated,
            "migration_failed": out.migration_failed,
            "rejected": out.rejected,
            "users_on_edge": out.users_on_edge,
            "status": decision.status,
            "bound_bytes": decision.bound_bytes,
            "gap": relative_gap(out.cloud_load_bytes, decision.bound_bytes),
            "decision_time_s": elapsed,
        }

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
                lane.restore(doc["lanes"][lane.name])
            self.next_step = int(doc["next_step"])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: damaged checkpoint ({exc!r})") from None


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
    progress: bool = False,
    checkpoint_s: float | None = None,
) -> int:
    """Roll ``names`` over ``stream`` for ``steps`` steps into the CSV ``out``.

    Returns the number of rows written by this call. With ``resume`` an existing CSV and its
    checkpoint are continued; without it an existing CSV is refused. A checkpoint is written
    at most every ``checkpoint_s`` seconds (default CHECKPOINT_S; 0: after every step).
    """
    steps = stream.n_steps if steps is None else steps
    roll = Rollout(stream, names, settings or MethodSettings())
    out, ckpt = Path(out), state_path(out)
    if out.exists() and not resume:
        raise InputError(f"{out}: exists; pass --resume to continue it, or delete it")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    if out.exists():
        _prepare_resume(roll, out, ckpt)
    else:
        _save(ckpt, roll)  # the checkpoint exists before any row does
    start = roll.next_step
    bar = tqdm(
        total=steps, initial=min(start, steps), unit="step", file=sys.stderr, disable=not progress
    )
    every = CHECKPOINT_S if checkpoint_s is None else checkpoint_s
    saved = time.monotonic()
    with bar, records.RowWriter(out, COLUMNS, append=out.exists()) as writer:
        while roll.next_step < steps:
            for row in roll.step():
                writer.write(row)  # flushed: on disk (page cache) before the checkpoint
            bar.update(1)
            if roll.next_step == steps or time.monotonic() - saved >= every:
                _save(ckpt, roll)
                saved = time.monotonic()
    return max(0, steps - start) * len(names)


def _save(ckpt: Path, roll: Rollout) -> None:
    files.write_text_atomic(ckpt, json.dumps(roll.state()) + "\n")


def _prepare_resume(roll: Rollout, out: Path, ckpt: Path) -> None:
    if not ckpt.exists():
        raise InputError(f"{out}: no checkpoint {ckpt.name} beside it; cannot resume, delete it")
    roll.restore(files.read_json(ckpt), str(ckpt))
    rows = roll.next_step * len(roll.lanes)
    records.check_header(out, COLUMNS)
    have = records.count_rows(out)
    if have < rows:
        raise InputError(f"{out}: holds {have} rows, its checkpoint {rows}; cannot resume")
    if rows == 0:
        out.write_bytes(b"")  # the header is written again
    else:
        records.truncate_rows(out, rows)  # rows written after the checkpoint are redone


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


def build_parser() -> cli.Parser:
    p = cli.make_parser(PROG, "Run methods on the same stream; one CSV row per method and step.")
    p.add_argument("stream", metavar="STREAM", help="dtasm-stream/1 file (.json[.gz])")
    p.add_argument("--methods", required=True, help="comma-separated method names")
    p.add_argument("--out", required=True, metavar="CSV", help="the step records")
    p.add_argument(
        "--steps", type=cli.count(1), default=None, help="steps (default: the stream's length)"
    )
    cli.add_solver_options(p, time_limit_default=None)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    names = parse_methods(args.methods)  # unknown names are refused before any file is made
    stream = files.read_stream(args.stream)
    settings = cli.solver_settings(args)
    progress = not args.quiet and sys.stderr.isatty()
    try:
        run(
            stream,
            names,
            args.out,
            steps=args.steps,
            settings=settings,
            resume=args.resume,
            progress=progress,
        )
    except KeyboardInterrupt:
        print(f"{args.out}: stopped; rerun with --resume to continue", file=sys.stderr)
        raise
    print(format_summary(summarize(records.read_rows(args.out))), file=sys.stderr)
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
