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
Registered as ``dtasm_opt/DTASM-v0`` once ``dtasm_opt`` is imported
(:mod:`dtasm_opt.rl.registration`): ``gymnasium.make("dtasm_opt/DTASM-v0", stream=...)``.
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

ACTION_TYPES = ("scores", "targets")


def _observation_high(stream: Stream) -> np.ndarray:
    """Upper bounds of the observation space: 1, or more where a stream exceeds Table II."""
    high = np.ones(N_FEATURES, dtype=np.float32)
    for k, name in enumerate(VOLUME_NAMES):
        peak = float(getattr(stream, name).max()) / FEATURE_SCALES[k]
        high[k] = max(1.0, np.nextafter(np.float32(peak), np.float32(np.inf)))
    return np.broadcast_to(high, (stream.n_users, N_FEATURES)).copy()


class DTASMEnv(gym.Env):
    """The DTASM MDP over a stream; the simulator judges every action (docs/design.md §3).

    - ``stream``: a fixed stream (every episode replays it), or ``scenario`` with
      ``stream_seed``: the stream generated from them. With ``resample=True`` (a scenario
      only) every ``reset`` draws a new stream of the scenario, its seed drawn from
      ``self.np_random``: ``reset(seed=s)`` fixes the sequence of scenarios, and vector envs
      with distinct seeds see distinct streams. ``reset(options={"stream_seed": k})`` draws
      the scenario's stream of seed k for that episode.
    - ``action_type="scores"`` (the paper's agent): a Box of U x H scores, the per-user argmax
      is the target ES. ``"targets"``: a MultiDiscrete of U targets in 0..H (H = the cloud).
    - :meth:`action_masks` (MaskablePPO's name) gives, flattened, the targets a user can take
      without a failed migration (and the cloud, for ``"targets"``).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        stream: Stream | None = None,
        *,
        scenario: Scenario | None = None,
        stream_seed: int = 0,
        stream_steps: int = 500,
        resample: bool = False,
        action_type: str = "scores",
    ) -> None:
        if stream is not None and scenario is not None:
            raise InputError("env: give a stream or a scenario, not both")
        if resample and stream is not None:
            raise InputError("env: resample draws streams from a scenario; give a scenario")
        if action_type not in ACTION_TYPES:
            raise InputError(f"env: action_type {action_type!r} is unknown, use {ACTION_TYPES}")
        self.scenario = scenario or Scenario()
        self.stream_steps, self.resample, self.action_type = stream_steps, resample, action_type
        if stream is None:
            stream = generate_stream(self.scenario, stream_seed, steps=stream_steps)
        self.stream = stream
        u, h = stream.n_users, stream.n_servers
        # A resampled stream is a Table II stream: its features lie in [0, 1].
        high = np.ones((u, N_FEATURES), np.float32) if resample else _observation_high(stream)
        self.observation_space = spaces.Box(
            low=0.0, high=high, shape=(u, N_FEATURES), dtype=np.float32
        )
        self.action_space: spaces.Space = (
            spaces.Box(low=-1.0, high=1.0, shape=(u, h), dtype=np.float32)
            if action_type == "scores"
            else spaces.MultiDiscrete(np.full(u, h + 1))
        )
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
        stream_seed = (options or {}).get("stream_seed")
        if stream_seed is None and self.resample:
            stream_seed = int(self.np_random.integers(2**31))
        if stream_seed is not None:
            self.stream = generate_stream(self.scenario, int(stream_seed), self.stream_steps)
        self._t = 0
        self._inst = self.stream.instance(0)
        return observe(self._inst), {"step": 0, "stream": self.stream.name}

    def step(self, action):
        if self.action_type == "targets":
            target = np.asarray(action, dtype=np.int64).reshape(-1)
        else:
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
        """(U, H) :func:`feasible_targets` of the current step (a feasibility-aware agent)."""
        return feasible_targets(self._inst)

    def action_masks(self) -> np.ndarray:
        """The mask sb3-contrib's MaskablePPO asks for, flattened: per user the ESs it can
        reach without a failed migration, and (``"targets"``) the cloud, always allowed."""
        mask = self.action_mask()
        if self.action_type == "targets":
            mask = np.concatenate([mask, np.ones((mask.shape[0], 1), dtype=bool)], axis=1)
        return mask.reshape(-1)

    def set_state(self, t: int, server: np.ndarray) -> np.ndarray:
        """Put the episode at step ``t`` with the given servers (used by ``--resume``)."""
        self._t = int(t)
        self._inst = self.stream.instance(self._t % self.stream.n_steps, np.asarray(server))
        return observe(self._inst)
