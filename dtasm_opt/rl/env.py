"""A Gymnasium adapter over the simulator: the paper's MDP (Section IV-B, eqs. (17)-(19)).

- Observation: the state (17), one row of 7 features per user, float32, each scaled to about
  [0, 1] (:mod:`dtasm_opt.rl.observation` names the columns and their scales).
- Action: a Box of U x H scores in [-1, 1] (a softmax actor's probabilities or a tanh actor's
  outputs both fit); the per-user argmax is the target ES. The paper's agent names ESs only.
- Reward (19): minus the step's cloud load in MB of 2^20 bytes (``StepOutcome.reward``).
- Action mask (optional, an agent design choice, not part of the paper's MDP):
  :func:`~dtasm_opt.rl.actions.feasible_targets` / :meth:`DTASMEnv.action_mask` give, per
  user, the ESs that the user can be sent to without a failed migration: its current ES, or
  an ES whose migration downtime (3) from the current server is <= xi. It is the same
  knowledge DANearest uses (it
  comes from the observed instance through :func:`dtasm_opt.core.physics.target_physics`); the
  observation stays the state (17) and the simulator is unchanged. A TD3 agent configured with
  ``mask_infeasible=True`` puts -inf on the other ESs before its softmax.
- An episode is one pass over the stream: reset starts at step 0 with the stream's initial
  servers (docs/design.md §4); the episode is truncated after the stream's T steps.

The environment itself draws nothing at random: a stream fixes every exogenous state, so any
seed gives the same rollout for the same actions. ``reset(seed=...)`` still seeds
``self.np_random`` (Gymnasium's contract) for wrappers that draw from it.
Registered as ``dtasm_opt/DTASM-v0``; ``gymnasium.make("dtasm_opt.rl.env:dtasm_opt/DTASM-v0",
stream=...)`` imports this module and registers it on the fly.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dtasm_opt.core import simulator
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.stream import Stream
from dtasm_opt.errors import InputError
from dtasm_opt.rl.actions import feasible_targets, scores_to_action
from dtasm_opt.rl.observation import FEATURE_SCALES, N_FEATURES, VOLUME_NAMES, observe

ENV_ID = "dtasm_opt/DTASM-v0"


def _observation_high(stream: Stream) -> np.ndarray:
    """Upper bounds of the observation space: 1, or more where a stream exceeds Table II."""
    high = np.ones(N_FEATURES, dtype=np.float32)
    for k, name in enumerate(VOLUME_NAMES):
        peak = float(getattr(stream, name).max()) / FEATURE_SCALES[k]
        high[k] = max(1.0, np.nextafter(np.float32(peak), np.float32(np.inf)))
    return np.broadcast_to(high, (stream.n_users, N_FEATURES)).copy()


class DTASMEnv(gym.Env):
    """The DTASM MDP over one stream; the simulator judges every action (docs/design.md §3)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        stream: Stream | None = None,
        *,
        scenario: Scenario | None = None,
        stream_seed: int = 0,
        stream_steps: int = 500,
    ) -> None:
        if stream is None:
            stream = generate_stream(scenario or Scenario(), stream_seed, steps=stream_steps)
        elif scenario is not None:
            raise InputError("env: give a stream or a scenario, not both")
        self.stream = stream
        u, h = stream.n_users, stream.n_servers
        self.observation_space = spaces.Box(
            low=0.0, high=_observation_high(stream), shape=(u, N_FEATURES), dtype=np.float32
        )
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(u, h), dtype=np.float32)
        self._t = 0
        self._inst = stream.instance(0)
        self.last_outcome: simulator.StepOutcome | None = None

    @property
    def instance(self) -> Instance:
        """The current step's instance (exogenous state and the servers before the decision)."""
        return self._inst

    @property
    def t(self) -> int:
        """Steps taken in this episode (the stream step the next action decides)."""
        return self._t

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._inst = self.stream.instance(0)
        return observe(self._inst), {"step": 0}

    def step(self, action):
        target = scores_to_action(action, self.stream.n_users, self.stream.n_servers)
        return self.step_targets(target)

    def step_targets(self, target: np.ndarray):
        """Step with explicit targets 0..H (a teacher's action, for instance)."""
        out = simulator.apply(self._inst, target)
        self.last_outcome = out  # the simulator's full judgement, for step records
        info = {
            "step": self._t,
            "cloud_load_bytes": out.cloud_load_bytes,
            **out.metrics(),
            "total_downtime_s": out.total_downtime_s,
            "action": np.asarray(target, dtype=np.int64),
        }
        self._t += 1
        truncated = self._t >= self.stream.n_steps
        k = self._t % self.stream.n_steps
        # After the last step the observation is of the stream's step 0 with the servers
        # reached (a bootstrap target); reset() restarts from the initial servers.
        self._inst = self.stream.instance(k, out.final_server)
        return observe(self._inst), out.reward, False, truncated, info

    def action_mask(self) -> np.ndarray:
        """:func:`feasible_targets` of the current step (for a feasibility-aware agent)."""
        return feasible_targets(self._inst)

    def set_state(self, t: int, server: np.ndarray) -> np.ndarray:
        """Put the episode at step ``t`` with the given servers (used by ``--resume``)."""
        self._t = int(t)
        self._inst = self.stream.instance(self._t % self.stream.n_steps, np.asarray(server))
        return observe(self._inst)


gym.register(id=ENV_ID, entry_point="dtasm_opt.rl.env:DTASMEnv")
