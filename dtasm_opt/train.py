"""Train the paper's TD3 agent on a stream (Algorithm 1) and log every step.

    python -m dtasm_opt.train STREAM --steps N --seed S --out DIR [--resume]
    python -m dtasm_opt.train --users 200 --servers 8 --xi 1.2 --stream-seed 1 --steps N --out DIR

DIR receives ``steps.csv`` (one row per training step, the DESIGN step-record columns plus
``phase``, ``critic_loss`` and ``actor_loss``), ``last.pt`` (written every
``--checkpoint-every`` steps and at the end: networks, optimizers, replay buffer, random
generator states and the environment's position, so ``--resume`` continues where it stopped)
and ``manifest.json``; at the end also ``policy.pt`` (the actor only, for ``td3:DIR/policy.pt``).
The checkpoints record the system it was trained on (``td3:DIR/last.pt``
refuses any other system). Training past the stream's end starts a new episode from step 0
and the stream's initial servers (DESIGN section 4).

Optional warm start (``--warm-start-steps N --teacher NAME``): for the first N steps the
environment executes a teacher's action (any method name: ``danearest``, ``milp``, ...; or
``stay``, the hand rule "stay on your ES; cloud users go to their RAN's ES"). Cloud targets are
replaced by the user's home ES (its current ES, or its RAN's ES for a cloud user), since the
agent names ESs only. The replay buffer stores the executed action as a one-hot action, and
the actor is fitted to it by cross-entropy; the critics train as usual. ``--teacher milp``
takes ``--teacher-time-limit`` (s per step) and ``--teacher-second-stage`` (default ``none``:
least cloud load only, the fastest).

Agent options that are not the paper's (see :mod:`dtasm_opt.solvers.td3`): ``--mask``
(softmax only over ESs reachable without a failed migration) and ``--stay-bias B``.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dtasm_opt.errors import InputError

COLUMNS = (
    "method",
    "step",
    "phase",
    "cloud_load_bytes",
    "mean_downtime_s",
    "migrated",
    "migration_failed",
    "rejected",
    "users_on_edge",
    "decision_time_s",
    "critic_loss",
    "actor_loss",
)


def home_targets(inst) -> np.ndarray:
    """Each user's home ES: its current ES, or its RAN's ES if it is in the cloud."""
    s = inst.users.server
    return np.where(s == inst.cloud, inst.users.ran, s)


def _teacher_labels(teacher, inst) -> np.ndarray:
    """The teacher's targets, the cloud replaced by the home ES (the agent names ESs only)."""
    home = home_targets(inst)
    if teacher == "stay":
        return home
    a = np.asarray(teacher.decide(inst, 0).action, dtype=np.int64)
    return np.where(a == inst.cloud, home, a)


def export_policy(ckpt_path: str | Path, policy_path: str | Path) -> None:
    """A small checkpoint for ``td3:PATH``: the actor, its config and the system only."""
    from dtasm_opt import checkpoint

    doc = checkpoint.load(ckpt_path)
    keep = {k: doc[k] for k in ("config", "system", "obs_dim", "step", "stream")}
    checkpoint.save(policy_path, {**keep, "agent": {"actor": doc["agent"]["actor"]}})


def _read_rows(path: Path, below: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if int(r["step"]) < below]


def train(
    stream,
    cfg,
    out_dir: str | Path,
    steps: int,
    *,
    resume: bool = False,
    checkpoint_every: int = 500,
    warm_start_steps: int = 0,
    teacher: str = "danearest",
    teacher_time_limit_s: float | None = None,
    teacher_second_stage: str = "none",
    progress: bool = True,
) -> dict:
    """Train for ``steps`` environment steps in total (counting those before a resume)."""
    import torch
    from tqdm import tqdm

    from dtasm_opt import checkpoint
    from dtasm_opt.env import DTASMEnv
    from dtasm_opt.methods import MethodSettings, make_method
    from dtasm_opt.solvers.td3 import Agent, TD3Config

    if steps < 1:
        raise InputError(f"steps: {steps} is invalid, must be >= 1")
    if checkpoint_every < 1:
        raise InputError(f"checkpoint-every: {checkpoint_every} is invalid, must be >= 1")
    out = Path(out_dir)
    ckpt_path, csv_path = out / "last.pt", out / "steps.csv"
    env = DTASMEnv(stream)
    u, h = stream.n_users, stream.n_servers
    system = checkpoint.system_fingerprint(stream.servers, stream.apps, u, stream.xi_s)
    obs_dim = u * 7

    start = 0
    if resume:
        doc = checkpoint.load(ckpt_path)
        checkpoint.check_fingerprint(doc["system"], system, str(ckpt_path))
        cfg = TD3Config.from_dict(doc["config"])
        warm_start_steps, teacher = int(doc["warm_start_steps"]), str(doc["teacher"])
        agent = Agent(cfg, obs_dim, u, h)
        agent.load_state_dict(doc["agent"])
        start = int(doc["step"])
        obs = env.set_state(int(doc["env_t"]), doc["env_server"].numpy())
    else:
        out.mkdir(parents=True, exist_ok=True)
        agent = Agent(cfg, obs_dim, u, h)
        obs, _ = env.reset(seed=cfg.seed)
    teacher_m = None
    if warm_start_steps > start:
        teacher_m = (
            "stay"
            if teacher == "stay"
            else make_method(
                teacher,
                MethodSettings(
                    seed=cfg.seed,
                    time_limit_s=teacher_time_limit_s,
                    second_stage=teacher_second_stage,
                ),
            )
        )
    manifest = {
        "command": "dtasm_opt.train",
        "config": cfg.to_dict(),
        "system": system,
        "stream": stream.name,
        "stream_steps": stream.n_steps,
        "steps": steps,
        "warm_start_steps": warm_start_steps,
        "teacher": teacher,
        "teacher_time_limit_s": teacher_time_limit_s,
        "teacher_second_stage": teacher_second_stage,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "resumed_from": start,
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    def save(next_step: int) -> None:
        checkpoint.save(
            ckpt_path,
            {
                "config": cfg.to_dict(),
                "system": system,
                "obs_dim": obs_dim,
                "agent": agent.state_dict(),
                "step": next_step,
                "env_t": env.t,
                "env_server": torch.from_numpy(env.instance.users.server.copy()),
                "warm_start_steps": warm_start_steps,
                "teacher": teacher,
                "stream": stream.name,
            },
        )

    kept = _read_rows(csv_path, start)
    fh = open(csv_path, "w", newline="")
    writer = csv.DictWriter(fh, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(kept)
    loads = [float(r["cloud_load_bytes"]) for r in kept[-20:]]
    masked = cfg.mask_infeasible
    mask = env.action_mask() if masked else None
    bar = tqdm(
        range(start, steps), initial=start, total=steps, disable=not progress, file=sys.stderr
    )
    try:
        for step in bar:
            t0 = time.perf_counter()
            if step < warm_start_steps:
                target = _teacher_labels(teacher_m, env.instance)
                action = np.eye(h, dtype=np.float32)[target].ravel()
                phase = "warm"
            else:
                action = agent.act(obs, explore=True, mask=mask)
                target = np.argmax(action.reshape(u, h), axis=1)
                phase = "collect" if step < cfg.learning_starts else "train"
            decision_s = time.perf_counter() - t0
            next_obs, reward, terminated, truncated, info = env.step_targets(target)
            next_mask = env.action_mask() if masked else None
            agent.buffer.add(obs, action, reward, next_obs, terminated, mask, next_mask)
            critic_loss = actor_loss = None
            if step >= cfg.learning_starts:
                critic_loss, actor_loss = agent.update(train_actor=step >= warm_start_steps)
            if step < warm_start_steps:
                for _ in range(cfg.bc_updates):
                    b = agent.buffer.sample(agent.rng, cfg.batch_size)
                    labels = b.actions.view(-1, u, h).argmax(-1).numpy()
                    agent.imitate(b.obs.numpy(), labels, b.masks)
                if step == warm_start_steps - 1:
                    agent.sync_target_actor()
            obs, mask = next_obs, next_mask
            if truncated:
                obs, _ = env.reset()
                mask = env.action_mask() if masked else None
            writer.writerow(
                {
                    "method": "td3",
                    "step": step,
                    "phase": phase,
                    "cloud_load_bytes": info["cloud_load_bytes"],
                    "mean_downtime_s": info["mean_downtime_s"],
                    "migrated": info["migrated"],
                    "migration_failed": info["migration_failed"],
                    "rejected": info["rejected"],
                    "users_on_edge": info["users_on_edge"],
                    "decision_time_s": decision_s,
                    "critic_loss": "" if critic_loss is None else critic_loss,
                    "actor_loss": "" if actor_loss is None else actor_loss,
                }
            )
            fh.flush()
            loads = (loads + [info["cloud_load_bytes"]])[-20:]
            bar.set_postfix(cloud_MB=f"{np.mean(loads) / 2**20:.2f}", refresh=False)
            if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
                save(step + 1)
    finally:
        fh.close()
        bar.close()
    if start >= steps:
        save(start)
    export_policy(ckpt_path, out / "policy.pt")
    rows = _read_rows(csv_path, steps)[-min(500, steps) :]
    return {
        "steps": steps,
        "checkpoint": str(ckpt_path),
        "last_steps": len(rows),
        "mean_cloud_load_mb": float(np.mean([float(r["cloud_load_bytes"]) for r in rows])) / 2**20,
        "mean_migrated": float(np.mean([int(r["migrated"]) for r in rows])),
        "mean_migration_failed": float(np.mean([int(r["migration_failed"]) for r in rows])),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dtasm_opt.train", description=__doc__.split("\n")[0]
    )
    p.add_argument("stream", nargs="?", help="a dtasm-stream/1 file (or use --users ...)")
    p.add_argument("--users", type=int, help="generate a stream: U users")
    p.add_argument("--servers", type=int, default=8, help="generate: H edge servers")
    p.add_argument("--xi", type=float, default=1.2, help="generate: migration bound xi in s")
    p.add_argument("--stream-seed", type=int, default=1, help="generate: scenario seed")
    p.add_argument("--stream-steps", type=int, default=500, help="generate: T steps")
    p.add_argument("--steps", type=int, required=True, help="training steps in total")
    p.add_argument("--seed", type=int, default=0, help="agent seed (torch and numpy)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--warm-start-steps", type=int, default=0, help="imitate a teacher first")
    p.add_argument("--teacher", default="danearest", help="warm-start teacher method")
    p.add_argument("--teacher-time-limit", type=float, default=None, help="s per step")
    p.add_argument(
        "--teacher-second-stage",
        choices=("none", "migrations", "downtime"),
        default="none",
        help="milp teacher's tie-break (none: fastest)",
    )
    p.add_argument(
        "--mask", action="store_true", help="mask ESs whose migration would fail (not paper)"
    )
    p.add_argument("--stay-bias", type=float, default=None, help="logit bonus of the home ES")
    p.add_argument("--explore-noise", type=float, default=None, help="std on actor logits")
    p.add_argument("--gamma", type=float, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--policy-delay", type=int, default=None, help="lambda")
    p.add_argument("--hidden", default=None, help="hidden sizes, e.g. 256,256,256,256")
    p.add_argument("--actor", choices=("flat", "shared"), default=None, help="actor network")
    p.add_argument("--no-progress", action="store_true")
    return p


def _config(args):
    from dtasm_opt.solvers.td3 import TD3Config

    kw = {"seed": args.seed, "threads": args.threads}
    if args.mask:
        kw["mask_infeasible"] = True
    for key in ("explore_noise", "gamma", "lr", "policy_delay", "actor", "stay_bias"):
        if getattr(args, key) is not None:
            kw[key] = getattr(args, key)
    if args.hidden:
        try:
            kw["hidden"] = tuple(int(x) for x in args.hidden.split(","))
        except ValueError:
            raise InputError(f"hidden: {args.hidden!r} is not a list of integers") from None
    return TD3Config(**kw)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from dtasm_opt.files import read_stream
        from dtasm_opt.generator import Scenario, generate_stream

        if (args.stream is None) == (args.users is None):
            raise InputError("stream: give a stream file or --users (not both)")
        if args.stream is not None:
            stream = read_stream(args.stream)
        else:
            scenario = Scenario(users=args.users, servers=args.servers, xi_s=args.xi)
            stream = generate_stream(scenario, args.stream_seed, steps=args.stream_steps)
        summary = train(
            stream,
            _config(args),
            args.out,
            args.steps,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            warm_start_steps=args.warm_start_steps,
            teacher=args.teacher,
            teacher_time_limit_s=args.teacher_time_limit,
            teacher_second_stage=args.teacher_second_stage,
            progress=not args.no_progress,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
