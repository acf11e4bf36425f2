"""TD3's replay buffer: transitions in numpy arrays, minibatches as named tensors (SB3's
``ReplayBufferSamples``), sampled with the agent's own Generator."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from dtasm_opt.errors import InputError

MAX_BUFFER_BYTES = 4 * 2**30  # the replay buffer's arrays, allocated at once


class Batch(NamedTuple):
    """A minibatch of transitions (s_i, a_i, r_i, s_{i+1}) as float32 tensors."""

    obs: torch.Tensor  # (B, U * N_FEATURES)
    masks: torch.Tensor | None  # (B, U*H) feasible ESs of obs (None: no masking)
    next_masks: torch.Tensor | None  # (B, U*H) feasible ESs of next_obs
    actions: torch.Tensor  # (B, U*H) differentiable actions (per-user probabilities)
    rewards: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, U * N_FEATURES)
    dones: torch.Tensor  # (B,) 1 where the episode terminated (never, in DTASM)


class ReplayBuffer:
    """A circular buffer of transitions in numpy arrays; sampled with the agent's Generator."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, masked: bool = False):
        need = capacity * (4 * (2 * obs_dim + act_dim + 2) + (2 * act_dim if masked else 0))
        if need > MAX_BUFFER_BYTES:
            raise InputError(
                f"buffer_size: {capacity} transitions of this system need {need / 2**30:.1f} GiB "
                f"(at most {MAX_BUFFER_BYTES / 2**30:.0f} GiB)"
            )
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
