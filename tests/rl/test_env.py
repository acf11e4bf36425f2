"""The Gymnasium adapter: spaces, determinism, episodes, and that the simulator is the judge."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from dtasm_opt.core import simulator
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.errors import InputError
from dtasm_opt.rl.actions import feasible_targets
from dtasm_opt.rl.env import DTASMEnv
from dtasm_opt.rl.observation import observe
from dtasm_opt.rl.registration import ENV_ID


@pytest.fixture(scope="module")
def stream():
    return generate_stream(Scenario(users=12, servers=3), seed=5, steps=6)


def test_check_env_passes(stream):
    env = DTASMEnv(stream)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (12, 7)
    assert env.action_space.shape == (12, 3)


def test_registered_id_makes_the_env(stream):
    env = gym.make(ENV_ID, stream=stream)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (12, 7) and obs.dtype == np.float32


def test_observation_is_the_normalised_state_17(stream):
    env = DTASMEnv(stream)
    obs, _ = env.reset(seed=0)
    inst = stream.instance(0)
    assert obs.dtype == np.float32
    assert np.all((obs >= 0) & (obs <= 1))  # a Table II stream fits [0, 1]
    np.testing.assert_allclose(obs[:, 6], inst.users.server / 3, rtol=1e-6)
    np.testing.assert_allclose(obs[:, 4], inst.users.ran / 2, rtol=1e-6)
    np.testing.assert_allclose(obs[:, 0], inst.users.task_bits / (1024 * 8192), rtol=1e-6)


def _rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        trace += [obs, np.float64(r), np.asarray(info["action"])]
    return trace


def test_same_seed_same_rollout(stream):
    rng = np.random.default_rng(3)
    actions = rng.uniform(-1, 1, size=(6, 12, 3)).astype(np.float32)
    a = _rollout(DTASMEnv(stream), 7, actions)
    b = _rollout(DTASMEnv(stream), 7, actions)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_step_is_the_simulators_argmax(stream):
    env = DTASMEnv(stream)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    servers = stream.initial_server
    for t in range(stream.n_steps):
        scores = rng.uniform(-1, 1, size=(12, 3)).astype(np.float32)
        inst = stream.instance(t, servers)
        out = simulator.apply(inst, scores.argmax(axis=1))
        _, reward, terminated, truncated, info = env.step(scores)
        assert reward == pytest.approx(-out.cloud_load_bytes / 2**20, rel=0, abs=0)
        assert info["migrated"] == out.migrated
        assert info["migration_failed"] == out.migration_failed
        assert not terminated and truncated == (t == stream.n_steps - 1)
        servers = out.final_server


def test_reset_restarts_from_initial_servers(stream):
    env = DTASMEnv(stream)
    first, _ = env.reset(seed=1)
    for _ in range(stream.n_steps):
        env.step(np.tile(np.array([0.0, 0.0, 1.0], np.float32), (12, 1)))  # all to ES 2
    again, _ = env.reset()
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(observe(stream.instance(0)), again)


def test_bad_action_is_an_input_error(stream):
    env = DTASMEnv(stream)
    env.reset(seed=0)
    with pytest.raises(InputError, match="action"):
        env.step(np.zeros(5, np.float32))


def test_action_mask_is_exactly_the_simulators_failure_rule():
    """Moving one user alone to ES h fails iff the mask says h is infeasible for it."""
    stream = generate_stream(Scenario(users=10, servers=4, xi_s=0.6), seed=3, steps=2)
    env = DTASMEnv(stream)
    env.reset(seed=0)
    env.step_targets(np.arange(10) % 4)  # scatter users so that step 1 has varied servers
    inst = env.instance
    mask = env.action_mask()
    np.testing.assert_array_equal(mask, feasible_targets(inst))
    assert mask.shape == (10, 4) and mask.any(axis=1).all()
    assert not mask.all()  # xi = 0.6 s leaves some migrations infeasible: the test bites
    s = inst.users.server
    for u in range(10):
        for h in range(4):
            action = s.copy()
            action[u] = h
            out = simulator.apply(inst, action)
            assert out.migration_failed == int(s[u] < 4 and not mask[u, h])


def test_masked_random_actions_never_fail(stream):
    env = DTASMEnv(stream)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(stream.n_steps):
        scores = rng.uniform(-1, 1, size=(12, 3))
        scores[~env.action_mask()] = -np.inf
        *_, info = env.step_targets(scores.argmax(axis=1))
        assert info["migration_failed"] == 0


@pytest.mark.parametrize("first", ["dtasm_opt", "gymnasium"])
def test_the_plain_id_works_after_import_dtasm_opt_in_either_order(first):
    other = "gymnasium" if first == "dtasm_opt" else "dtasm_opt"
    code = (
        f"import {first}, {other}, sys\n"
        "import gymnasium as gym\n"
        "env = gym.make('dtasm_opt/DTASM-v0', stream_steps=2)\n"
        "print(env.observation_space.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(200, 7)"


def test_resampled_scenarios_follow_the_seed_and_differ_across_vector_envs():
    kw = dict(scenario=Scenario(users=6, servers=2, apps=2), stream_steps=3, resample=True)
    a, b = DTASMEnv(**kw), DTASMEnv(**kw)
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    np.testing.assert_array_equal(oa, ob)  # one seed, one scenario sequence
    oc, _ = b.reset(seed=6)
    assert not np.array_equal(oa, oc)
    venv = gym.make_vec(ENV_ID, num_envs=2, **kw)
    obs, _ = venv.reset(seed=[1, 2])
    assert not np.array_equal(obs[0], obs[1])
    again, _ = gym.make_vec(ENV_ID, num_envs=2, **kw).reset(seed=[1, 2])
    np.testing.assert_array_equal(obs, again)
    venv.close()


def test_the_targets_variant_passes_check_env_and_masks_for_maskable_ppo():
    env = DTASMEnv(scenario=Scenario(users=6, servers=3, apps=2), stream_steps=4,
                   action_type="targets")  # fmt: skip
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    masks = env.action_masks().reshape(6, 4)
    np.testing.assert_array_equal(masks[:, :3], env.action_mask())
    assert masks[:, 3].all()  # the cloud is always a target
    first = env.instance
    _, reward, *_ = env.step(np.full(6, 3))  # everybody to the cloud
    assert reward == simulator.apply(first, np.full(6, 3)).reward
