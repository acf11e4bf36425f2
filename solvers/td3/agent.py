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
  from the user's current server > xi; :func:`dtasm_opt.rl.actions.feasible_targets`) before the
  softmax, when acting, in the target policy and in the actor update. The stored action is the
  masked softmax (the action actually taken); the masks of s_i and s_{i+1} are stored with the
  transition. The simulator is unchanged; the mask uses the knowledge DANearest uses.
- ``stay_bias``: a constant added to the logit of the user's "home" ES (its current ES, or its
  RAN's ES for a user in the cloud), so that the untrained actor starts near the hand rule
  "stay where you run; cloud users go to their RAN's ES" and TD3 learns deviations from it.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from dtasm_opt.errors import InputError
from dtasm_opt.solvers.td3.buffer import ReplayBuffer
from dtasm_opt.solvers.td3.config import TD3Config
from dtasm_opt.solvers.td3.networks import Critic, make_actor, masked_softmax


class Losses(NamedTuple):
    critic: float
    actor: float | None  # None on steps without an actor update


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
        with ``mask_infeasible`` the (U, H) ``mask`` of
        :func:`dtasm_opt.rl.actions.feasible_targets` zeroes the other ESs (required then)."""
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
