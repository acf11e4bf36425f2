"""Training TD3 on a stream (Algorithm 1): a loop that yields step records, and what goes
around it.

:class:`Trainer` owns one run (environment, agent, optional warm-start teacher) and advances
it one environment step at a time; :meth:`Trainer.run` yields a
:class:`~dtasm_opt.core.records.StepRecord` (with ``phase`` and the losses) per step and prints
nothing. Logging, checkpoints and progress are callbacks that :func:`train` puts around the
loop (PyVRP keeps its search loop free of printing the same way; SB3 has
``CheckpointCallback``): :class:`CsvLog`, :class:`Checkpoints`, :class:`Progress`. A study cell
runs the same loop with no callback at all and keeps the records in memory.

Training past the stream's end starts a new episode from step 0 and the stream's initial
servers (docs/design.md §4). Resuming restores everything the next step depends on (networks,
optimizers, replay buffer, random generator states, the environment's position), so a resumed
run continues bit for bit; its CSV is cut back to the checkpoint's step first (rows written
after the checkpoint, and a torn last line, are redone exactly once).

Optional warm start (``warm_start_steps`` with ``teacher``): for the first N steps the
environment executes a teacher's action (any policy name, or ``stay``: "stay on your ES; cloud
users go to their RAN's ES"). Cloud targets are replaced by the user's home ES, since the
agent names ESs only; the buffer stores the executed action one-hot and the actor is fitted to
it by cross-entropy while the critics train as usual.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch

from dtasm_opt.core import records
from dtasm_opt.core.files import write_json
from dtasm_opt.core.fingerprint import check_fingerprint, system_fingerprint
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.limits import MAX_STEPS, check_at_most
from dtasm_opt.core.locks import OutputLock
from dtasm_opt.core.method import Method, MethodSettings
from dtasm_opt.core.records import StepRecord
from dtasm_opt.core.stream import Stream
from dtasm_opt.core.units import BYTES_PER_MB
from dtasm_opt.errors import InputError
from dtasm_opt.rl.actions import home_targets
from dtasm_opt.rl.env import DTASMEnv
from dtasm_opt.rl.observation import N_FEATURES
from dtasm_opt.solvers import registry
from dtasm_opt.solvers.td3 import checkpoint
from dtasm_opt.solvers.td3.agent import Agent
from dtasm_opt.solvers.td3.config import STAY, TD3Config, TrainOptions
from dtasm_opt.solvers.td3.policy import TD3Policy

METHOD = "td3"  # the method column of training records
CSV_NAME, LAST_NAME, POLICY_NAME = "steps.csv", "last.pt", "policy.pt"
COLUMNS = records.step_columns(training=True)
SUMMARY_STEPS = 500  # train's summary: means over the last steps
CHECKPOINT_S = 60.0  # at most this much training is redone after a kill


def make_teacher(options: TrainOptions, seed: int) -> Method | None:
    """The warm-start teacher (None for the ``stay`` rule, which needs no method)."""
    if options.teacher == STAY:
        return None
    settings = MethodSettings(
        seed=seed,
        time_limit_s=options.teacher_time_limit_s,
        second_stage=options.teacher_second_stage,
    )
    return registry.make_method(options.teacher, settings)


def teacher_targets(teacher: Method | None, inst: Instance) -> np.ndarray:
    """The teacher's targets, the cloud replaced by the home ES (the agent names ESs only)."""
    home = home_targets(inst)
    if teacher is None:
        return home
    a = np.asarray(teacher.decide(inst, 0).action, dtype=np.int64)
    return np.where(a == inst.cloud, home, a)


class TrainingStep(NamedTuple):
    """What one training step yields: the simulator's record and the learner's figures."""

    record: StepRecord
    phase: str  # "warm" (teacher), "collect" (before learning starts) or "train"
    critic_loss: float | None
    actor_loss: float | None

    def row(self, **extra: object) -> dict[str, object]:
        """The CSV row: the step record's columns and the training columns."""
        return self.record.row(
            phase=self.phase, critic_loss=self.critic_loss, actor_loss=self.actor_loss, **extra
        )


class Trainer:
    """One training run on ``stream``, advanced one environment step at a time."""

    def __init__(self, stream: Stream, cfg: TD3Config, options: TrainOptions | None = None):
        self.stream, self.cfg = stream, cfg
        self.options = options or TrainOptions()
        self.env = DTASMEnv(stream)
        self.n_users, self.n_servers = stream.n_users, stream.n_servers
        self.obs_dim = self.n_users * N_FEATURES
        self.system = system_fingerprint(stream.servers, stream.apps, stream.n_users, stream.xi_s)
        self.agent = Agent(cfg, self.obs_dim, self.n_users, self.n_servers)
        self.next_step = 0
        self.obs, _ = self.env.reset(seed=cfg.seed)
        self.mask = self._mask()
        # Built now, so that a bad teacher is refused before any file is written.
        warm = self.options.warm_start_steps > 0
        self.teacher = make_teacher(self.options, cfg.seed) if warm else None

    def _mask(self) -> np.ndarray | None:
        return self.env.action_mask() if self.cfg.mask_infeasible else None

    def run(self, steps: int) -> Iterator[TrainingStep]:
        """Train until ``steps`` steps in total, yielding each step's record."""
        while self.next_step < steps:
            yield self.step()

    def step(self) -> TrainingStep:
        """One step of Algorithm 1: act (or follow the teacher), store, update."""
        cfg, agent, env, step = self.cfg, self.agent, self.env, self.next_step
        u, h = self.n_users, self.n_servers
        warm = step < self.options.warm_start_steps
        stream_step = env.t % self.stream.n_steps
        t0 = time.perf_counter()
        if warm:
            target = teacher_targets(self.teacher, env.instance)
            action = np.eye(h, dtype=np.float32)[target].ravel()
            phase = "warm"
        else:
            action = agent.act(self.obs, explore=True, mask=self.mask)
            target = np.argmax(action.reshape(u, h), axis=1)
            phase = "collect" if step < cfg.learning_starts else "train"
        decision_s = time.perf_counter() - t0
        next_obs, reward, terminated, truncated, _info = env.step_targets(target)
        outcome = env.last_outcome
        assert outcome is not None
        next_mask = self._mask()
        agent.buffer.add(self.obs, action, reward, next_obs, terminated, self.mask, next_mask)
        critic_loss = actor_loss = None
        if step >= cfg.learning_starts:
            critic_loss, actor_loss = agent.update(train_actor=not warm)
        if warm:
            self._imitate()
            if step == self.options.warm_start_steps - 1:
                agent.sync_target_actor()
        self.obs, self.mask = next_obs, next_mask
        if truncated:
            self.obs, _ = env.reset()
            self.mask = self._mask()
        self.next_step += 1
        record = StepRecord.judged(
            METHOD,
            step,
            stream_step,
            outcome,
            status="heuristic",
            bound_bytes=None,
            decision_time_s=decision_s,
        )
        return TrainingStep(record, phase, critic_loss, actor_loss)

    def _imitate(self) -> None:
        agent, cfg = self.agent, self.cfg
        for _ in range(cfg.bc_updates):
            b = agent.buffer.sample(agent.rng, cfg.batch_size)
            labels = b.actions.view(-1, self.n_users, self.n_servers).argmax(-1).numpy()
            agent.imitate(b.obs.numpy(), labels, b.masks)

    # Checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The checkpoint payload: everything the next step depends on."""
        return {
            "config": self.cfg.to_dict(),
            "system": self.system,
            "obs_dim": self.obs_dim,
            "agent": self.agent.state_dict(),
            "step": self.next_step,
            "env_t": self.env.t,
            "env_server": torch.from_numpy(self.env.instance.users.server.copy()),
            "warm_start_steps": self.options.warm_start_steps,
            "teacher": self.options.teacher,
            "stream": self.stream.name,
        }

    @classmethod
    def from_checkpoint(
        cls,
        stream: Stream,
        doc: dict,
        where: str,
        *,
        teacher_time_limit_s: float | None = None,
        teacher_second_stage: str = "none",
    ) -> Trainer:
        """The run saved in ``doc`` (refused on another system); the teacher's solver limits
        are the caller's (they change no result of a teacher that proves its optimum)."""
        here = system_fingerprint(stream.servers, stream.apps, stream.n_users, stream.xi_s)
        check_fingerprint(doc["system"], here, where)
        try:
            options = TrainOptions(
                warm_start_steps=int(doc["warm_start_steps"]),
                teacher=str(doc["teacher"]),
                teacher_time_limit_s=teacher_time_limit_s,
                teacher_second_stage=teacher_second_stage,
            )
            trainer = cls(stream, TD3Config.from_dict(doc["config"]), options)
            trainer.agent.load_state_dict(doc["agent"])
            trainer.next_step = int(doc["step"])
            trainer.obs = trainer.env.set_state(int(doc["env_t"]), doc["env_server"].numpy())
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise InputError(f"{where}: damaged checkpoint ({type(exc).__name__}: {exc})") from None
        trainer.mask = trainer._mask()
        return trainer

    def policy(self, name: str = METHOD) -> TD3Policy:
        """The trained actor as a greedy ``td3`` policy (in memory, no file)."""
        return TD3Policy(
            actor=self.agent.actor,
            system=self.system,
            path=f"<{name}>",
            masked=self.cfg.mask_infeasible,
            name=name,
        )


# Callbacks around the loop ------------------------------------------------------------------


class Callback(Protocol):
    def on_step(self, trainer: Trainer, step: TrainingStep) -> None: ...

    def on_end(self, trainer: Trainer) -> None: ...


class CsvLog:
    """Append each record (with phase and losses) to ``steps.csv``, flushed row by row."""

    def __init__(self, path: Path, start: int):
        if start > 0 or path.exists():
            if not path.exists():
                raise InputError(f"{path}: missing; cannot resume the log")
            records.resume_rows(path, COLUMNS, start)
        self.writer = records.RowWriter(path, COLUMNS, append=path.exists())

    def on_step(self, trainer: Trainer, step: TrainingStep) -> None:
        self.writer.write(step.row())

    def on_end(self, trainer: Trainer) -> None:
        self.writer.close()


class Checkpoints:
    """Save ``last.pt`` every ``every`` steps, at least every CHECKPOINT_S seconds and after
    the last step (so a kill loses at most min(every steps, CHECKPOINT_S of work)); once
    training is complete, also ``policy.pt`` (the actor only, for ``td3:PATH``). A checkpoint
    holds everything the next step depends on, so when it was taken changes no result."""

    def __init__(self, folder: Path, every: int, steps: int):
        self.last, self.policy = folder / LAST_NAME, folder / POLICY_NAME
        self.every, self.steps = every, steps
        self.saved_at: int | None = None
        self.saved_time = time.monotonic()

    def on_step(self, trainer: Trainer, step: TrainingStep) -> None:
        done = trainer.next_step
        late = time.monotonic() - self.saved_time >= CHECKPOINT_S
        if done % self.every == 0 or done == self.steps or late:
            self.save(trainer)

    def save(self, trainer: Trainer) -> None:
        checkpoint.save(self.last, trainer.state_dict())
        self.saved_at = trainer.next_step
        self.saved_time = time.monotonic()

    def on_end(self, trainer: Trainer) -> None:
        if trainer.next_step < self.steps:
            return  # interrupted: last.pt stays at the last periodic checkpoint
        if self.saved_at != trainer.next_step:
            self.save(trainer)  # a resumed run that had nothing left to do
        keep = trainer.state_dict()
        keep = {k: keep[k] for k in ("config", "system", "obs_dim", "step", "stream")}
        actor = {"actor": trainer.agent.actor.state_dict()}
        checkpoint.save(self.policy, {**keep, "agent": actor})


class Progress:
    """A progress bar on stderr with the cloud load of the last 20 steps."""

    def __init__(self, steps: int, start: int, recent: Sequence[float] = ()):
        from tqdm import tqdm

        self.bar = tqdm(total=steps, initial=start, file=sys.stderr, unit="step")
        self.loads = list(recent)[-20:]

    def on_step(self, trainer: Trainer, step: TrainingStep) -> None:
        self.loads = (self.loads + [step.record.cloud_load_bytes])[-20:]
        self.bar.set_postfix(cloud_MB=f"{np.mean(self.loads) / BYTES_PER_MB:.2f}", refresh=False)
        self.bar.update(1)

    def on_end(self, trainer: Trainer) -> None:
        self.bar.close()


def train(
    stream: Stream,
    cfg: TD3Config,
    out_dir: str | Path,
    steps: int,
    *,
    options: TrainOptions | None = None,
    resume: bool = False,
    checkpoint_every: int = 500,
    progress: bool = True,
) -> dict:
    """Train for ``steps`` steps in total (counting those before a resume) into ``out_dir``:
    ``steps.csv``, ``last.pt``, ``policy.pt`` and ``manifest.json``. Returns a summary."""
    if steps < 1:
        raise InputError(f"steps: {steps} is invalid, must be >= 1")
    check_at_most(steps, MAX_STEPS, "steps")
    if checkpoint_every < 1:
        raise InputError(f"checkpoint-every: {checkpoint_every} is invalid, must be >= 1")
    options = options or TrainOptions()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} exists and is not a folder")
    if resume:
        if not (out / LAST_NAME).exists():
            raise InputError(f"--out: {out} holds no checkpoint {LAST_NAME} to resume")
        with OutputLock(out, folder=True):
            last = out / LAST_NAME
            trainer = Trainer.from_checkpoint(
                stream,
                checkpoint.load(last),
                str(last),
                teacher_time_limit_s=options.teacher_time_limit_s,
                teacher_second_stage=options.teacher_second_stage,
            )
            return _train_locked(trainer, stream, out, steps, checkpoint_every, progress)
    trainer = Trainer(stream, cfg, options)  # every option checked before the folder exists
    _refuse_a_used_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    with OutputLock(out, folder=True):
        _refuse_a_used_folder(out)  # another run may have started meanwhile
        return _train_locked(trainer, stream, out, steps, checkpoint_every, progress)


def _refuse_a_used_folder(out: Path) -> None:
    if (out / LAST_NAME).exists() or (out / CSV_NAME).exists():
        raise InputError(f"--out: {out} holds a run; pass --resume to continue it")


def _train_locked(
    trainer: Trainer, stream: Stream, out: Path, steps: int, every: int, progress: bool
) -> dict:
    csv_path = out / CSV_NAME
    start = trainer.next_step
    write_json(out / "manifest.json", _manifest(trainer, stream, steps, start))
    checkpoints = Checkpoints(out, every, steps)
    if start == 0:
        checkpoints.save(trainer)  # from the start on, a kill never stops a resume
    callbacks: list[Callback] = [CsvLog(csv_path, start), checkpoints]
    if progress:
        recent = records.floats(records.read_rows(csv_path), "cloud_load_bytes")
        callbacks.append(Progress(steps, start, recent))
    try:
        for step in trainer.run(steps):
            for cb in callbacks:
                cb.on_step(trainer, step)
    finally:
        for cb in callbacks:  # also when interrupted: the log is closed, checkpoints kept
            cb.on_end(trainer)
    return summary(csv_path, steps, out / LAST_NAME)


def _manifest(trainer: Trainer, stream: Stream, steps: int, start: int) -> dict:
    o = trainer.options
    return {
        "command": "dtasm_opt.train",
        "config": trainer.cfg.to_dict(),
        "system": trainer.system,
        "stream": stream.name,
        "stream_steps": stream.n_steps,
        "steps": steps,
        "warm_start_steps": o.warm_start_steps,
        "teacher": o.teacher,
        "teacher_time_limit_s": o.teacher_time_limit_s,
        "teacher_second_stage": o.teacher_second_stage,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "resumed_from": start,
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }


def summary(csv_path: Path, steps: int, last: Path) -> dict:
    """Means over the log's last SUMMARY_STEPS steps."""
    rows = records.read_rows(csv_path)[-min(SUMMARY_STEPS, steps) :]
    return {
        "steps": steps,
        "checkpoint": str(last),
        "last_steps": len(rows),
        "mean_cloud_load_mb": float(np.mean(records.floats(rows, "cloud_load_bytes")))
        / BYTES_PER_MB,
        "mean_migrated": float(np.mean(records.floats(rows, "migrated"))),
        "mean_migration_failed": float(np.mean(records.floats(rows, "migration_failed"))),
    }


# The registry's trainer entry (a study cell trains in memory) --------------------------------


def make_trainer(stream: Stream, cfg: TD3Config, options: TrainOptions | None = None) -> Trainer:
    """The registry's trainer factory: a run on ``stream`` with no file and no callback."""
    return Trainer(stream, cfg, options)
