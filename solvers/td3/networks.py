"""TD3's networks: the actor (state (17) -> a softmax over the H ESs per user, the paper's
Fig. 3) and the twin critics Q(s, a).

Two actor variants: :class:`Actor`, the paper's MLP on the whole flattened state, and
:class:`SharedActor`, one small MLP applied to every user's own row (not the paper's; see its
docstring). ``stay_bias`` adds a constant to the logit of each user's home ES, so that an
untrained actor starts near "stay where you run" (not the paper's either). Observation
columns are read by name (:mod:`dtasm_opt.rl.observation`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dtasm_opt.rl.observation import (
    APP,
    N_FEATURES,
    RAN,
    SERVER,
    VOLUMES,
    ran_scale,
    server_scale,
)
from dtasm_opt.solvers.td3.config import TD3Config


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.ReLU()]
        n_in = h
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def decode_ran_server(
    obs: torch.Tensor, n_users: int, n_servers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, U) RAN y in 0..H-1 and current server X in 0..H, decoded from the state (17)."""
    x = obs.view(-1, n_users, N_FEATURES)
    h = n_servers
    ran = torch.round(x[..., RAN] * ran_scale(h)).long().clamp(0, h - 1)
    server = torch.round(x[..., SERVER] * server_scale(h)).long().clamp(0, h)
    return ran, server


def home_onehot(obs: torch.Tensor, n_users: int, n_servers: int) -> torch.Tensor:
    """(B, U, H) one-hot of each user's home ES: its current ES X, or its RAN y if X is the
    cloud (:func:`dtasm_opt.rl.actions.home_targets`, decoded from the state)."""
    ran, server = decode_ran_server(obs, n_users, n_servers)
    return F.one_hot(torch.where(server < n_servers, server, ran), n_servers).float()


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
        # Inputs: the four volumes, the application kind, one-hot RAN (H) and server (H + 1).
        self.net = mlp(5 + 2 * n_servers + 1, hidden, n_servers)

    def raw_logits(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.view(-1, self.n_users, N_FEATURES)
        h = self.n_servers
        ran, server = decode_ran_server(obs, self.n_users, h)
        feats = [
            x[..., VOLUMES],
            x[..., APP : APP + 1],
            F.one_hot(ran, h),
            F.one_hot(server, h + 1),
        ]
        return self.net(torch.cat([f.float() for f in feats], dim=-1))


def make_actor(cfg: TD3Config, obs_dim: int, n_users: int, n_servers: int) -> Actor:
    """The actor the config names: the paper's flat MLP or the per-user shared one."""
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
