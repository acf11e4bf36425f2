"""Twin-delayed DDPG for DTASM (paper Section IV-C, Algorithm 1), in the manner of CleanRL's
``td3_continuous_action.py`` but as importable functions.

The actor maps the flattened state (17) to U x H logits and takes a softmax per user: the
probabilities are the differentiable action a_t stored in the replay buffer, and their per-user
argmax is the implemented action (the paper's Fig. 3). Twin critics Q(s, a) with target
networks, the clipped double-Q target, target policy smoothing, one critic update per
environment step and delayed actor and target updates every lambda steps, with soft updates.

Exploration (the paper gives none): Gaussian noise of std ``explore_noise`` on the actor's
logits before the softmax, so the stored action is still a point of the per-user simplex and
the executed action is its argmax. Target policy smoothing adds clipped Gaussian noise to the
target actor's logits in the same way.

Two options that are agent design choices, not the paper's (both off by default, so
``TD3Config()`` is the paper's agent):

- ``mask_infeasible``: the actor puts -inf on every ES whose migration would fail (downtime (3)
  from the user's current server > xi; :func:`dtasm_opt.env.feasible_targets`) before the
  softmax, when acting, in the target policy and in the actor update. The stored action is the
  masked softmax (the action actually taken); the masks of s_i and s_{i+1} are stored with the
  transition. The simulator is unchanged; the mask uses the knowledge DANearest uses.
- ``stay_bias``: a constant added to the logit of the user's "home" ES (its current ES, or its
  RAN's ES for a user in the cloud), so that the untrained actor starts near the hand rule
  "stay where you run; cloud users go to their RAN's ES" and TD3 learns deviations from it.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dtasm_opt.errors import InputError


@dataclass(frozen=True)
class TD3Config:
    """TD3 hyper-parameters; defaults are the paper's Section V-A where it gives them."""

    hidden: tuple[int, ...] = (256, 256, 256, 256)  # hidden layer sizes (paper: 4 x 256)
    actor: str = "flat"  # "flat": the paper's MLP on the whole state; "shared": per-user MLP
    shared_hidden: tuple[int, ...] = (64, 64)  # hidden sizes of the per-user actor ("shared")
    buffer_size: int = 2048  # replay buffer capacity (paper: 2048)
    batch_size: int = 128  # minibatch size (paper: 128)
    policy_delay: int = 20  # lambda: actor and target updates every lambda critic updates
    tau: float = 0.005  # soft-update rate (the paper's 1 - mu)
    lr: float = 1e-4  # Adam learning rate of actor and critics (paper: 1e-4)
    gamma: float = 0.1  # discount factor (paper's Fig. 4 and 7: 0.1)
    learning_starts: int = 50  # T_c: collection steps before the first update (paper: 50)
    explore_noise: float = 0.5  # std of Gaussian noise on the actor's logits when acting
    policy_noise: float = 0.2  # target policy smoothing: std of noise on target logits
    noise_clip: float = 0.5  # target policy smoothing: noise clipped to +-noise_clip
    reward_scale: float = 0.1  # rewards (MB) are multiplied by this before learning
    bc_lr: float = 1e-3  # Adam learning rate of the warm-start imitation (cross-entropy)
    bc_updates: int = 2  # imitation gradient steps per environment step while warm-starting
    mask_infeasible: bool = False  # -inf on ESs whose migration would fail (not the paper's)
    stay_bias: float = 0.0  # logit bonus of each user's home ES (0: the paper's actor)
    seed: int = 0  # seeds torch (init, smoothing noise) and numpy (exploration, sampling)
    threads: int = 1  # torch.set_num_threads

    def __post_init__(self) -> None:
        checks = {
            "hidden": len(self.hidden) >= 1 and all(int(h) >= 1 for h in self.hidden),
            "actor": self.actor in ("flat", "shared"),
            "shared_hidden": all(int(h) >= 1 for h in self.shared_hidden),
            "buffer_size": self.buffer_size >= 1,
            "batch_size": self.batch_size >= 1,
            "policy_delay": self.policy_delay >= 1,
            "tau": 0.0 < self.tau <= 1.0,
            "lr": self.lr > 0,
            "gamma": 0.0 <= self.gamma < 1.0,
            "learning_starts": self.learning_starts >= 0,
            "explore_noise": self.explore_noise >= 0,
            "policy_noise": self.policy_noise >= 0,
            "noise_clip": self.noise_clip >= 0,
            "reward_scale": self.reward_scale > 0,
            "bc_lr": self.bc_lr > 0,
            "bc_updates": self.bc_updates >= 0,
            "threads": self.threads >= 1,
            "stay_bias": np.isfinite(self.stay_bias),
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


class Batch(NamedTuple):
    """A minibatch of transitions (s_i, a_i, r_i, s_{i+1}) as float32 tensors."""

    obs: torch.Tensor  # (B, U*7)
    masks: torch.Tensor | None  # (B, U*H) feasible ESs of obs (None: no masking)
    next_masks: torch.Tensor | None  # (B, U*H) feasible ESs of next_obs
    actions: torch.Tensor  # (B, U*H) differentiable actions (per-user probabilities)
    rewards: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, U*7)
    dones: torch.Tensor  # (B,) 1 where the episode terminated (never, in DTASM)


class Losses(NamedTuple):
    critic: float
    actor: float | None  # None on steps without an actor update


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.ReLU()]
        n_in = h
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def home_onehot(obs: torch.Tensor, n_users: int, n_servers: int) -> torch.Tensor:
    """(B, U, H) one-hot of each user's home ES: its current ES X, or its RAN y if X is the
    cloud, both decoded from the normalised state (17)."""
    x = obs.view(-1, n_users, 7)
    h = n_servers
    ran = torch.round(x[..., 4] * max(h - 1, 1)).long().clamp(0, h - 1)
    server = torch.round(x[..., 6] * h).long().clamp(0, h)
    return F.one_hot(torch.where(server < h, server, ran), h).float()


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-user softmax over the last axis; ESs where ``mask`` is False get probability 0."""
    if mask is not None:
        logits = logits.masked_fill(~mask.view(logits.shape), float("-inf"))
    # Written out: torch.softmax over a last axis of H = 8 is about 5x slower on the CPU.
    z = (logits - logits.amax(dim=-1, keepdim=True)).exp()
    return z / z.sum(dim=-1, keepdim=True)


class Actor(nn.Module):
    """State -> U x H logits; ``forward`` gives the per-user softmax, flattened (Fig. 3)."""

    def __init__(
        self,
        obs_dim: int,
        n_users: int,
        n_servers: int,
        hidden: tuple[int, ...],
        stay_bias: float = 0.0,
    ):
        super().__init__()
        self.n_users, self.n_servers, self.stay_bias = n_users, n_servers, float(stay_bias)
        self.net = mlp(obs_dim, hidden, n_users * n_servers)

    def raw_logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).view(-1, self.n_users, self.n_servers)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.raw_logits(obs)
        if self.stay_bias:
            out = out + self.stay_bias * home_onehot(obs, self.n_users, self.n_servers)
        return out

    def forward(self, obs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_softmax(self.logits(obs), mask).flatten(1)


class SharedActor(Actor):
    """One small MLP applied to every user's own row of (17), weights shared across users.

    Not the paper's network: a flat MLP must learn each user's mapping separately (it did not
    generalise from a few hundred states here), while the per-user rule "keep the SI where it
    runs" is one function of the user's own features. The RAN y and the current server X are
    decoded from their normalised values and one-hot encoded; the output is again a softmax
    over the H ESs per user, so the replay buffer, critics and argmax are unchanged.
    """

    def __init__(
        self,
        obs_dim: int,
        n_users: int,
        n_servers: int,
        hidden: tuple[int, ...],
        stay_bias: float = 0.0,
    ):
        nn.Module.__init__(self)
        self.n_users, self.n_servers, self.stay_bias = n_users, n_servers, float(stay_bias)
        self.net = mlp(5 + 2 * n_servers + 1, hidden, n_servers)

    def raw_logits(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.view(-1, self.n_users, 7)
        h = self.n_servers
        ran = torch.round(x[..., 4] * max(h - 1, 1)).long().clamp(0, h - 1)
        server = torch.round(x[..., 6] * h).long().clamp(0, h)
        feats = [x[..., :4], x[..., 5:6], F.one_hot(ran, h), F.one_hot(server, h + 1)]
        return self.net(torch.cat([f.float() for f in feats], dim=-1))


def make_actor(cfg: TD3Config, obs_dim: int, n_users: int, n_servers: int) -> Actor:
    if cfg.actor == "shared":
        return SharedActor(obs_dim, n_users, n_servers, cfg.shared_hidden, cfg.stay_bias)
    return Actor(obs_dim, n_users, n_servers, cfg.hidden, cfg.stay_bias)


class Critic(nn.Module):
    """Q(s, a) over the flattened state and differentiable action."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.net = mlp(obs_dim + act_dim, hidden, 1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], dim=1)).squeeze(1)


class ReplayBuffer:
    """A circular buffer of transitions in numpy arrays; sampled with the agent's Generator."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, masked: bool = False):
        self.masked = masked
        shape = (capacity, act_dim) if masked else (0, act_dim)
        self.masks = np.ones(shape, dtype=bool)
        self.next_masks = np.ones(shape, dtype=bool)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0

    def add(self, obs, action, reward: float, next_obs, done: bool, mask=None, next_mask=None):
        i = self.pos
        if self.masked:
            self.masks[i], self.next_masks[i] = mask.ravel(), next_mask.ravel()
        self.obs[i], self.actions[i], self.next_obs[i] = (
            obs.ravel(),
            action.ravel(),
            next_obs.ravel(),
        )
        self.rewards[i], self.dones[i] = reward, float(done)
        self.pos = (i + 1) % len(self.obs)
        self.size = min(self.size + 1, len(self.obs))

    def sample(self, rng: np.random.Generator, batch_size: int) -> Batch:
        idx = rng.integers(0, self.size, size=batch_size)
        t = torch.from_numpy
        return Batch(
            t(self.obs[idx]),
            t(self.masks[idx]) if self.masked else None,
            t(self.next_masks[idx]) if self.masked else None,
            t(self.actions[idx]),
            t(self.rewards[idx]),
            t(self.next_obs[idx]),
            t(self.dones[idx]),
        )

    def state_dict(self) -> dict:
        n = self.size
        return {
            "obs": torch.from_numpy(self.obs[:n].copy()),
            "next_obs": torch.from_numpy(self.next_obs[:n].copy()),
            "actions": torch.from_numpy(self.actions[:n].copy()),
            "rewards": torch.from_numpy(self.rewards[:n].copy()),
            "dones": torch.from_numpy(self.dones[:n].copy()),
            **(
                {
                    "masks": torch.from_numpy(self.masks[:n].copy()),
                    "next_masks": torch.from_numpy(self.next_masks[:n].copy()),
                }
                if self.masked
                else {}
            ),
            "pos": self.pos,
            "size": self.size,
        }

    def load_state_dict(self, d: dict) -> None:
        n = int(d["size"])
        names = ("obs", "next_obs", "actions", "rewards", "dones")
        for name in names + (("masks", "next_masks") if self.masked else ()):
            getattr(self, name)[:n] = d[name].numpy()
        self.pos, self.size = int(d["pos"]), n


class Agent:
    """Networks, target networks, optimizers, replay buffer and random generators of one run."""

    def __init__(self, cfg: TD3Config, obs_dim: int, n_users: int, n_servers: int):
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.n_users, self.n_servers = n_users, n_servers
        act_dim = n_users * n_servers
        self.actor = make_actor(cfg, obs_dim, n_users, n_servers)
        self.qf1 = Critic(obs_dim, act_dim, cfg.hidden)
        self.qf2 = Critic(obs_dim, act_dim, cfg.hidden)
        self.actor_t = copy.deepcopy(self.actor)
        self.qf1_t = copy.deepcopy(self.qf1)
        self.qf2_t = copy.deepcopy(self.qf2)
        for net in (self.actor_t, self.qf1_t, self.qf2_t):
            net.requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr, foreach=True)
        self.critic_opt = torch.optim.Adam(
            list(self.qf1.parameters()) + list(self.qf2.parameters()), lr=cfg.lr, foreach=True
        )  # foreach: one fused update of all tensors, about 1.7x faster than the loop on CPU
        self.bc_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.bc_lr, foreach=True)
        self.buffer = ReplayBuffer(cfg.buffer_size, obs_dim, act_dim, cfg.mask_infeasible)
        self.rng = np.random.default_rng(cfg.seed)  # exploration and minibatch sampling
        self.torch_gen = torch.Generator().manual_seed(cfg.seed)  # target policy smoothing
        self.n_updates = 0

    # Acting ---------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool, mask: np.ndarray | None = None) -> np.ndarray:
        """The differentiable action (U*H probabilities) for one state, with exploration;
        with ``mask_infeasible`` the (U, H) ``mask`` of :func:`dtasm_opt.env.feasible_targets`
        zeroes the other ESs (it is required then)."""
        logits = self.actor.logits(torch.from_numpy(obs.reshape(1, -1)))[0].numpy()
        if explore and self.cfg.explore_noise > 0:
            logits = logits + self.rng.normal(0.0, self.cfg.explore_noise, logits.shape)
        if self.cfg.mask_infeasible:
            if mask is None:
                raise InputError("td3 act: mask_infeasible needs the action mask")
            logits = np.where(mask.reshape(logits.shape), logits, -np.inf)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32).ravel()

    # Learning (Algorithm 1) -------------------------------------------------------------
    def update(self, train_actor: bool = True) -> Losses:
        """One critic update (lines 16-24); every lambda-th call also the actor (27-30) and
        the soft target updates (32-34)."""
        cfg = self.cfg
        b = self.buffer.sample(self.rng, cfg.batch_size)
        with torch.no_grad():
            logits = self.actor_t.logits(b.next_obs)
            noise = torch.randn(logits.shape, generator=self.torch_gen) * cfg.policy_noise
            noisy = logits + noise.clamp(-cfg.noise_clip, cfg.noise_clip)
            next_a = masked_softmax(noisy, b.next_masks).flatten(1)
            q_next = torch.min(self.qf1_t(b.next_obs, next_a), self.qf2_t(b.next_obs, next_a))
            y = b.rewards * cfg.reward_scale + cfg.gamma * (1.0 - b.dones) * q_next
        critic_loss = F.mse_loss(self.qf1(b.obs, b.actions), y) + F.mse_loss(
            self.qf2(b.obs, b.actions), y
        )
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        self.n_updates += 1

        actor_loss = None
        if self.n_updates % cfg.policy_delay == 0:
            if train_actor:
                loss = -self.qf1(b.obs, self.actor(b.obs, b.masks)).mean()
                self.actor_opt.zero_grad()
                loss.backward()
                self.actor_opt.step()
                actor_loss = float(loss.detach())
            self.soft_update()
        return Losses(float(critic_loss.detach()), actor_loss)

    @torch.no_grad()
    def soft_update(self) -> None:
        pairs = ((self.actor, self.actor_t), (self.qf1, self.qf1_t), (self.qf2, self.qf2_t))
        for net, tgt in pairs:
            for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                tp.lerp_(p, self.cfg.tau)

    def imitate(self, obs: np.ndarray, targets: np.ndarray, masks=None) -> float:
        """One cross-entropy step of the actor towards a teacher's ES choices (warm start).
        With ``masks`` ((B, U*H) bool) the logits are masked and labels on masked ESs are
        ignored (the masked policy cannot take them)."""
        logits = self.actor.logits(torch.from_numpy(obs.reshape(len(obs), -1)))
        logits = logits.reshape(-1, self.n_servers)
        labels = torch.from_numpy(np.asarray(targets, dtype=np.int64).reshape(-1))
        if masks is not None:
            m = torch.as_tensor(masks).reshape(-1, self.n_servers)
            logits = logits.masked_fill(~m, float("-inf"))
            labels = torch.where(m.gather(1, labels[:, None])[:, 0], labels, -100)
            if not bool((labels >= 0).any()):
                return 0.0
        loss = F.cross_entropy(logits, labels, ignore_index=-100)
        self.bc_opt.zero_grad()
        loss.backward()
        self.bc_opt.step()
        return float(loss.detach())

    def sync_target_actor(self) -> None:
        """Copy the actor into its target (after the warm start, so targets use it at once)."""
        self.actor_t.load_state_dict(self.actor.state_dict())

    # State ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        nets = ("actor", "qf1", "qf2", "actor_t", "qf1_t", "qf2_t")
        opts = ("actor_opt", "critic_opt", "bc_opt")
        return {
            **{n: getattr(self, n).state_dict() for n in nets + opts},
            "buffer": self.buffer.state_dict(),
            "rng": _np_state(self.rng),
            "torch_gen": self.torch_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "n_updates": self.n_updates,
        }

    def load_state_dict(self, d: dict) -> None:
        for n in ("actor", "qf1", "qf2", "actor_t", "qf1_t", "qf2_t"):
            getattr(self, n).load_state_dict(d[n])
        for n in ("actor_opt", "critic_opt", "bc_opt"):
            getattr(self, n).load_state_dict(d[n])
        self.buffer.load_state_dict(d["buffer"])
        self.rng.bit_generator.state = _np_state_from(d["rng"])
        self.torch_gen.set_state(d["torch_gen"])
        torch.set_rng_state(d["torch_rng"])
        self.n_updates = int(d["n_updates"])


def _np_state(rng: np.random.Generator) -> dict:
    """The PCG64 state as strings: 128-bit integers, kept exact through ``weights_only`` loads."""
    st = rng.bit_generator.state
    return {
        "bit_generator": st["bit_generator"],
        "state": str(st["state"]["state"]),
        "inc": str(st["state"]["inc"]),
        "has_uint32": int(st["has_uint32"]),
        "uinteger": int(st["uinteger"]),
    }


def _np_state_from(d: dict) -> dict:
    return {
        "bit_generator": d["bit_generator"],
        "state": {"state": int(d["state"]), "inc": int(d["inc"])},
        "has_uint32": d["has_uint32"],
        "uinteger": d["uinteger"],
    }
