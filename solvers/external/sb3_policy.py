"""``sb3:PATH.zip``: a Stable-Baselines3 model trained on the environment, as a method.

The algorithm is read from the file (the module of its saved policy class: TD3, DDPG, SAC,
PPO, A2C, DQN, or sb3-contrib's MaskablePPO). Loading runs no pickled code: Stable-Baselines3
keeps some values of its ``data`` file as pickles; every one of them is replaced on load
(``custom_objects``) by a value built here: the spaces of this project's environment for the
model's system size, the algorithm's own policy class by name, harmless schedules. The
weights are read with ``torch.load(weights_only=True)`` by Stable-Baselines3 itself. A model
whose network options were pickled (``policy_kwargs`` holding a class) is refused, as is a
model trained on a system of another size (its saved observation and action shapes).

The policy acts greedily (``deterministic=True``) on the environment's observation (17); a
score action's per-user argmax and a MultiDiscrete action's targets are implemented as the
environment would; MaskablePPO gets the environment's action masks.
"""

from __future__ import annotations

import importlib
import json
import re
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import Decision
from dtasm_opt.errors import InputError
from dtasm_opt.rl.actions import feasible_targets, scores_to_action
from dtasm_opt.rl.observation import N_FEATURES, observe

# policy class module -> (package, algorithm class); PPO and A2C share their policy module
ALGORITHMS = {
    "stable_baselines3.td3.policies": ("stable_baselines3", "TD3"),
    "stable_baselines3.sac.policies": ("stable_baselines3", "SAC"),
    "stable_baselines3.dqn.policies": ("stable_baselines3", "DQN"),
    "sb3_contrib.common.maskable.policies": ("sb3_contrib", "MaskablePPO"),
}
ON_POLICY_MODULE = "stable_baselines3.common.policies"


def read_data(path: Path) -> dict:
    """The model's ``data`` JSON (read as text: nothing in it is unpickled here)."""
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise InputError(f"{path}: not a Stable-Baselines3 model ({exc})") from None


def algorithm_of(data: dict, path: Path) -> tuple[Any, type]:
    """(algorithm class, policy class), from the readable fields of the saved policy class."""
    policy = data.get("policy_class")
    if not isinstance(policy, dict):
        raise InputError(f"{path}: policy_class: missing")
    module = str(policy.get("__module__", ""))
    if module == ON_POLICY_MODULE:
        package, algo = "stable_baselines3", "PPO" if "clip_range" in data else "A2C"
    elif module in ALGORITHMS:
        package, algo = ALGORITHMS[module]
    else:
        raise InputError(f"{path}: policy class from {module!r}: an algorithm not supported")
    try:
        algo_cls = getattr(importlib.import_module(package), algo)
    except ImportError:
        raise InputError(f"method sb3 needs {package}: pip install -e '.[sb3]'") from None
    policy_cls = saved_class(policy)
    if policy_cls is None:
        raise InputError(f"{path}: policy_class: not a readable class of {SAFE_PACKAGES}")
    return algo_cls, policy_cls


def saved_shape(data: dict, key: str, path: Path) -> tuple[int, ...]:
    value = data.get(key)
    shape = value.get("_shape") if isinstance(value, dict) else None
    if not isinstance(shape, list):
        raise InputError(f"{path}: {key}: its shape is not readable")
    return tuple(int(x) for x in shape)


SAFE_PACKAGES = ("stable_baselines3", "sb3_contrib")  # classes named by the file, not unpickled


def saved_class(value: dict) -> type | None:
    """A class the file names (module and readable ``__init__``) in a trusted package."""
    module = str(value.get("__module__", ""))
    found = re.search(r"<function (\w+)\.__init__", str(value.get("__init__", "")))
    if found is None or module.split(".")[0] not in SAFE_PACKAGES:
        return None
    try:
        return getattr(importlib.import_module(module), found.group(1))
    except (ImportError, AttributeError):
        return None


def replacements(data: dict, policy_cls: type, n_users: int, n_servers: int) -> dict:
    """A value for every pickled entry of ``data``, so that loading unpickles nothing."""
    from gymnasium import spaces
    from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit

    def constant(_progress: float) -> float:
        return 0.0

    obs = spaces.Box(0.0, np.inf, shape=(n_users, N_FEATURES), dtype=np.float32)
    if data["action_space"].get(":type:", "").endswith("MultiDiscrete'>"):
        act: Any = spaces.MultiDiscrete(np.full(n_users, n_servers + 1))
    else:
        act = spaces.Box(-1.0, 1.0, shape=(n_users, n_servers), dtype=np.float32)
    known = {
        "observation_space": obs,
        "action_space": act,
        "policy_class": policy_cls,
        "train_freq": TrainFreq(1, TrainFrequencyUnit.STEP),
        "ep_info_buffer": deque(),
        "ep_success_buffer": deque(),
    }
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not (isinstance(value, dict) and ":serialized:" in value):
            continue
        if key == "policy_kwargs":
            raise InputError(
                "policy_kwargs: pickled network options (a class); this model cannot be "
                "loaded without running pickled code"
            )
        if key in known:
            out[key] = known[key]
        elif "Schedule" in str(value.get(":type:", "")):
            out[key] = constant  # learning-rate and clip schedules: unused to act
        elif str(value.get(":type:", "")) in ("<class 'abc.ABCMeta'>", "<class 'type'>"):
            out[key] = saved_class(value)  # buffer classes, by name
        else:
            out[key] = None  # the last observation and the like: unused to act
    return out


def servers_of(data: dict, act_shape: tuple[int, ...]) -> int:
    """H from the saved action space: U x H scores, or U targets in 0..H."""
    space = data["action_space"]
    if not space.get(":type:", "").endswith("MultiDiscrete'>"):
        return act_shape[-1]
    nvec = str(space.get("nvec", "")).strip("[]").split()
    if not nvec:
        raise InputError("action_space: its nvec is not readable")
    return int(nvec[0]) - 1


class SB3Policy:
    """A loaded Stable-Baselines3 model acting greedily."""

    def __init__(self, model: Any, path: str, name: str, shapes: tuple, masked: bool):
        self.model, self.path, self.name = model, path, name
        self.obs_shape, self.act_shape = shapes
        self.masked = masked
        self.targets = hasattr(model.action_space, "nvec")

    def check(self, inst: Instance) -> None:
        u, h = inst.n_users, inst.n_servers
        want_act = (u,) if self.targets else (u, h)
        if self.obs_shape != (u, N_FEATURES) or self.act_shape != want_act:
            raise InputError(
                f"sb3:{self.path}: trained on a system of another size (observation "
                f"{self.obs_shape}, action {self.act_shape}; here {u} users, {h} ESs)"
            )

    def decide(self, inst: Instance, step: int) -> Decision:
        self.check(inst)
        kwargs: dict = {"deterministic": True}
        if self.masked:
            mask = feasible_targets(inst)
            if self.targets:
                mask = np.concatenate([mask, np.ones((inst.n_users, 1), dtype=bool)], axis=1)
            kwargs["action_masks"] = mask.reshape(-1)
        action, _ = self.model.predict(observe(inst), **kwargs)
        if self.targets:
            target = np.asarray(action, dtype=np.int64).reshape(-1)
        else:
            target = scores_to_action(action, inst.n_users, inst.n_servers)
        return Decision(action=target, status="heuristic")


def make_sb3(name: str, settings: MethodSettings) -> SB3Policy:
    """The registry's factory of ``sb3:PATH.zip`` names."""
    raw = name.split(":", 1)[1] if ":" in name else ""
    if not raw:
        raise InputError("method sb3: give a model as sb3:PATH.zip")
    path = Path(raw)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    data = read_data(path)
    algo_cls, policy_cls = algorithm_of(data, path)
    obs_shape = saved_shape(data, "observation_space", path)
    act_shape = saved_shape(data, "action_space", path)
    if len(obs_shape) != 2 or obs_shape[1] != N_FEATURES:
        raise InputError(f"{path}: observation {obs_shape} is not this environment's (U, 7)")
    n_users = obs_shape[0]
    n_servers = servers_of(data, act_shape)
    try:
        custom = replacements(data, policy_cls, n_users, n_servers)
        import torch

        torch.set_num_threads(max(1, int(settings.threads)))
        model = algo_cls.load(str(path), device="cpu", custom_objects=custom)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None
    masked = algo_cls.__name__ == "MaskablePPO"
    return SB3Policy(model, str(path), name, (obs_shape, act_shape), masked)
