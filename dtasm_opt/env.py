"""A Gymnasium adapter over the simulator: the paper's MDP (Section IV-B, eqs. (17)-(19)).

- Observation: the state (17), one row of 7 features per user, float32, each scaled to about
  [0, 1]: task bits Vt, result bits Vr, context bits Vm, computing intensity kappa (divided by
  Table II's upper bounds), the RAN y, the application kind F_u and the current server X_u
  (divided by H-1, F-1 and H; H is the cloud). The paper's (17) lists exactly these seven; the
  latency limit tau is static per user and left out, as in the paper.
- Action: a Box of U x H scores in [-1, 1] (a softmax actor's probabilities or a tanh actor's
  outputs both fit); the per-user argmax is the target ES. The paper's agent names ESs only.
- Reward (19): minus the step's cloud load in MB of 2^20 bytes (``StepOutcome.reward``).
- Action mask (optional, an agent design choice, not part of the paper's MDP):
  :func:`feasible_targets` / :meth:`DTASMEnv.action_mask` give, per user, the ESs that the
  user can be sent to without a failed migration: its current ES, or an ES whose migration
  downtime (3) from the current server is <= xi. It is the same knowledge DANearest uses (it
  comes from the observed instance through :func:`dtasm_opt.physics.target_physics`); the
  observation stays the state (17) and the simulator is unchanged. A TD3 agent configured with
  ``mask_infeasible=True`` puts -inf on the other ESs before its softmax.
- An episode is one pass over the stream: reset starts at step 0 with the stream's initial
  servers (DESIGN section 4); the episode is truncated after the stream's T steps.

The environment itself draws nothing at random: a stream fixes every exogenous state, so any
seed gives the same rollout for the same actions. ``reset(seed=...)`` still seeds
``self.np_random`` (Gymnasium's contract) for wrappers that draw from it.
Registered as ``dtasm_opt/DTASM-v0``; ``gymnasium.make("dtasm_opt.env:dtasm_opt/DTASM-v0",
stream=...)`` imports this module and registers it on the fly.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dtasm_opt import simulator
from dtasm_opt.errors import InputError
from dtasm_opt.generator import TABLE_II, Scenario, generate_stream
from dtasm_opt.instance import Instance
from dtasm_opt.physics import target_physics
from dtasm_opt.stream import Stream

ENV_ID = "dtasm_opt/DTASM-v0"
N_FEATURES = 7  # eq. (17): Vt, Vr, Vm, kappa, y, F, X
# Scales of the exogenous features: Table II's upper bounds, so a Table II stream lies in [0, 1].
FEATURE_SCALES = (
    TABLE_II["task_bits"][1],
    TABLE_II["result_bits"][1],
    TABLE_II["context_bits"][1],
    TABLE_II["cycles_per_bit"][1],
)


def observe(inst: Instance) -> np.ndarray:
    """The normalised state (17) of one step: a float32 (U, 7) array."""
    u = inst.users
    h, f = inst.n_servers, inst.apps.n_apps
    cols = (
        u.task_bits / FEATURE_SCALES[0],
        u.result_bits / FEATURE_SCALES[1],
        u.context_bits / FEATURE_SCALES[2],
        u.cycles_per_bit / FEATURE_SCALES[3],
        u.ran / max(h - 1, 1),
        u.app / max(f - 1, 1),
        u.server / h,
    )
    return np.stack(cols, axis=1).astype(np.float32)


def scores_to_action(scores: np.ndarray, n_users: int, n_servers: int) -> np.ndarray:
    """The implemented action: per-user argmax of the U x H scores (ties: the lowest ES)."""
    a = np.asarray(scores, dtype=np.float64)
    if a.size != n_users * n_servers or not np.all(np.isfinite(a)):
        raise InputError(f"action: expected {n_users} x {n_servers} finite scores")
    return np.argmax(a.reshape(n_users, n_servers), axis=1)


def feasible_targets(inst: Instance) -> np.ndarray:
    """(U, H) bool: ESs a user can be sent to without a failed migration (DESIGN rule 2).

    True for the user's current ES and for every ES whose downtime (3) from the current server
    is <= xi, evaluated exactly as the simulator does. A user with no such ES (a cloud user far
    from every ES) gets an all-True row, so every row leaves at least one choice.
    """
    h = inst.n_servers
    es = np.arange(h)[None, :]
    phys = target_physics(inst, es)
    ok = (es == inst.users.server[:, None]) | (phys.migration_s <= inst.xi_s)
    ok[~ok.any(axis=1)] = True
    return ok


def _observation_high(stream: Stream) -> np.ndarray:
    """Upper bounds of the observation space: 1, or more where a stream exceeds Table II."""
    high = np.ones(N_FEATURES, dtype=np.float32)
    for k, name in enumerate(("task_bits", "result_bits", "context_bits", "cycles_per_bit")):
        peak = float(getattr(stream, name).max()) / FEATURE_SCALES[k]
        high[k] = max(1.0, np.nextafter(np.float32(peak), np.float32(np.inf)))
    return np.broadcast_to(high, (stream.n_users, N_FEATURES)).copy()


class DTASMEnv(gym.Env):
    """The DTASM MDP over one stream; the simulator judges every action (DESIGN section 3)."""

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


gym.register(id=ENV_ID, entry_point="dtasm_opt.env:DTASMEnv")
