"""TD3's hyper-parameters and a training run's options: documented dataclasses
(docs/design.md §7, §9).

The defaults are the paper's Section V-A where it gives them, so ``TD3Config()`` is the paper's
agent. Three options are agent design choices that are not the paper's, all off by default:
``mask_infeasible``, ``stay_bias`` and ``actor = "shared"`` (see :mod:`.networks`). Every field's
help text generates a ``train`` flag and a study spec key (:mod:`dtasm_opt.core.options`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from dtasm_opt.core.limits import MAX_STEPS, MAX_THREADS, check_at_most
from dtasm_opt.core.method import SECOND_STAGES
from dtasm_opt.core.options import option
from dtasm_opt.errors import InputError
from dtasm_opt.solvers import registry

ACTORS = ("flat", "shared")
MAX_WIDTH = 65_536  # units of one hidden layer
MAX_BUFFER = 10_000_000  # transitions in the replay buffer (and in one minibatch)
STAY = "stay"  # the hand-rule teacher: stay on your ES; cloud users go to their RAN's ES


@dataclass(frozen=True)
class TD3Config:
    """TD3 hyper-parameters; defaults are the paper's where it gives them."""

    hidden: tuple[int, ...] = option((256, 256, 256, 256), "hidden layer sizes (paper: 4 x 256)")
    actor: str = option(
        "flat",
        "actor network: the paper's MLP on the whole state, or one per-user MLP (not the paper's)",
        choices=ACTORS,
    )
    shared_hidden: tuple[int, ...] = option((64, 64), "hidden sizes of the per-user actor")
    buffer_size: int = option(2048, "replay buffer capacity (paper: 2048)")
    batch_size: int = option(128, "minibatch size (paper: 128)")
    policy_delay: int = option(20, "lambda: actor and target updates every lambda critic updates")
    tau: float = option(0.005, "soft-update rate (the paper's 1 - mu)")
    lr: float = option(1e-4, "Adam learning rate of actor and critics (paper: 1e-4)")
    gamma: float = option(0.1, "discount factor (the paper's Figs. 4 and 7: 0.1)")
    learning_starts: int = option(50, "T_c: collection steps before the first update (paper: 50)")
    explore_noise: float = option(0.5, "std of Gaussian noise on the actor's logits when acting")
    policy_noise: float = option(0.2, "target policy smoothing: std of noise on target logits")
    noise_clip: float = option(0.5, "target policy smoothing: noise clipped to +-noise_clip")
    reward_scale: float = option(0.1, "rewards (MB) are multiplied by this before learning")
    bc_lr: float = option(1e-3, "Adam learning rate of the warm-start imitation")
    bc_updates: int = option(2, "imitation gradient steps per step while warm-starting")
    mask_infeasible: bool = option(
        False,
        "-inf on ESs whose migration would fail (not the paper's)",
        aliases=("--mask",),
    )
    stay_bias: float = option(0.0, "logit bonus of each user's home ES (0: the paper's actor)")
    seed: int = option(0, "seeds torch (init, smoothing noise) and numpy (exploration, sampling)")
    threads: int = option(1, "torch threads")

    def __post_init__(self) -> None:
        checks = {
            "hidden": 1 <= len(self.hidden) <= 16 and all(1 <= h <= MAX_WIDTH for h in self.hidden),
            "actor": self.actor in ACTORS,
            "shared_hidden": len(self.shared_hidden) <= 16
            and all(1 <= h <= MAX_WIDTH for h in self.shared_hidden),
            "buffer_size": 1 <= self.buffer_size <= MAX_BUFFER,
            "batch_size": 1 <= self.batch_size <= MAX_BUFFER,
            "policy_delay": 1 <= self.policy_delay <= MAX_STEPS,
            "tau": 0.0 < self.tau <= 1.0,
            "lr": self.lr > 0 and math.isfinite(self.lr),
            "gamma": 0.0 <= self.gamma < 1.0,
            "learning_starts": 0 <= self.learning_starts <= MAX_STEPS,
            "explore_noise": self.explore_noise >= 0,
            "policy_noise": self.policy_noise >= 0,
            "noise_clip": self.noise_clip >= 0,
            "reward_scale": self.reward_scale > 0,
            "bc_lr": self.bc_lr > 0 and math.isfinite(self.bc_lr),
            "bc_updates": 0 <= self.bc_updates <= 1_000,
            "seed": self.seed >= 0,
            "threads": 1 <= self.threads <= MAX_THREADS,
            "stay_bias": math.isfinite(self.stay_bias),
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"td3 config: {name}={getattr(self, name)!r} is invalid")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["shared_hidden"] = list(self.shared_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TD3Config:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for key in ("hidden", "shared_hidden"):
            if key in kw:
                kw[key] = tuple(int(h) for h in kw[key])
        return cls(**kw)


@dataclass(frozen=True)
class TrainOptions:
    """How a run is driven besides the agent's hyper-parameters (flags and study keys)."""

    warm_start_steps: int = option(0, "execute and imitate a teacher for the first N steps")
    teacher: str = option("danearest", "warm-start teacher: a policy name, or 'stay'")
    teacher_time_limit_s: float | None = option(
        None, "exact teacher: seconds per step (none: no limit)", aliases=("--teacher-time-limit",)
    )
    teacher_second_stage: str = option(
        "none", "exact teacher's tie-break (none: the fastest)", choices=SECOND_STAGES
    )

    def __post_init__(self) -> None:
        check_at_most(self.warm_start_steps, MAX_STEPS, "warm-start-steps")
        if self.warm_start_steps < 0:
            raise InputError(f"warm-start-steps: {self.warm_start_steps} is invalid, must be >= 0")
        if self.teacher != STAY:
            try:
                entry = registry.info(self.teacher)  # an unknown teacher is refused here
            except InputError as exc:
                raise InputError(f"teacher: {exc}") from None
            if entry.role != registry.POLICY:
                raise InputError(f"teacher: {self.teacher!r} is a {entry.role}, not a policy")
        if self.teacher_time_limit_s is not None and not self.teacher_time_limit_s > 0:
            raise InputError(
                f"teacher-time-limit: {self.teacher_time_limit_s} is invalid, must be > 0"
            )
