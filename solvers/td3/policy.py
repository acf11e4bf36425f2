"""A trained TD3 agent as a method (``td3:PATH``): the actor's per-user argmax over the ESs
(over the ESs reachable without a failed migration if it was trained with ``mask_infeasible``).

The checkpoint records the system it was trained on; a different system (users, ESs,
application kinds, xi, ES/link or application data) is refused with an InputError naming
what differs, on the first decision and whenever the system object changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from dtasm_opt.core.fingerprint import check_fingerprint, system_fingerprint
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Decision
from dtasm_opt.errors import InputError
from dtasm_opt.rl.actions import feasible_targets
from dtasm_opt.rl.observation import observe
from dtasm_opt.solvers.td3 import checkpoint
from dtasm_opt.solvers.td3.config import TD3Config
from dtasm_opt.solvers.td3.networks import Actor, make_actor


@dataclass
class TD3Policy:
    """Greedy actor: a[u] = argmax_h softmax(logits)[u, h] (the paper's executable action)."""

    actor: Actor
    system: dict
    path: str
    masked: bool = False  # the config's mask_infeasible: argmax over feasible ESs only
    name: str = "td3"
    _checked: tuple = field(default=(), repr=False)

    def check(self, inst: Instance) -> None:
        key = (id(inst.servers), id(inst.apps), inst.n_users, inst.xi_s)
        if key == self._checked:
            return
        here = system_fingerprint(inst.servers, inst.apps, inst.n_users, inst.xi_s)
        check_fingerprint(self.system, here, f"td3:{self.path}")
        self._checked = key

    @torch.no_grad()
    def scores(self, inst: Instance) -> np.ndarray:
        """The actor's per-user probabilities, (U, H)."""
        obs = torch.from_numpy(observe(inst).reshape(1, -1))
        mask = torch.from_numpy(feasible_targets(inst)) if self.masked else None
        return self.actor(obs, mask)[0].numpy().reshape(inst.n_users, inst.n_servers)

    def decide(self, inst: Instance, step: int) -> Decision:
        self.check(inst)
        action = np.argmax(self.scores(inst), axis=1).astype(np.int64)
        return Decision(action=action, status="heuristic")


def load_policy(path: str, threads: int = 1) -> TD3Policy:
    """The actor of a checkpoint written by ``dtasm_opt.train``."""
    doc = checkpoint.load(path)
    system = doc["system"]
    try:
        cfg = TD3Config.from_dict(doc["config"])
        torch.set_num_threads(max(1, int(threads)))
        actor = make_actor(cfg, int(doc["obs_dim"]), int(system["users"]), int(system["servers"]))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: config: not a valid agent ({exc})") from None
    try:
        actor.load_state_dict(doc["agent"]["actor"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise InputError(f"{path}: agent.actor: does not match its config ({exc})") from None
    actor.eval()
    return TD3Policy(actor=actor, system=system, path=str(path), masked=cfg.mask_infeasible)


def make_td3(name: str, settings: MethodSettings) -> TD3Policy:
    """Factory of ``td3:PATH`` names (see :mod:`dtasm_opt.solvers.registry`)."""
    path = name.split(":", 1)[1] if ":" in name else ""
    if not path:
        raise InputError("method td3: give a checkpoint as td3:PATH")
    policy = load_policy(path, settings.threads)
    policy.name = name
    return policy
