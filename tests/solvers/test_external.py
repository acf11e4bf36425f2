"""Policies from outside: py:MODULE:FACTORY and sb3:PATH.zip as methods in solve, rollout and
study specs; Stable-Baselines3 models load without unpickling; dtasm_opt.evaluate."""

from __future__ import annotations

import functools
import pickle
import textwrap
import warnings

import numpy as np
import pytest
from tiny import small_stream

import dtasm_opt
from dtasm_opt import rollout, solve, study
from dtasm_opt.core import files, records, simulator
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.rl.env import DTASMEnv

sb3 = pytest.importorskip("stable_baselines3")
SCENARIO = Scenario(users=8, servers=3, apps=2)
STREAM_SEED, STEPS = 3, 12

POLICY_MODULE = '''
import numpy as np

class StayOrNearest:
    """Stay on your ES; a cloud user goes to its RAN's ES."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def decide(self, inst, step):
        s = inst.users.server
        return np.where(s == inst.cloud, inst.users.ran, s)

def make(settings):
    return StayOrNearest(settings.seed)
'''


def small_spec(tmp_path, name: str, methods: list[str], steps: int):
    """A study spec of ``methods`` on 8 users and 3 ESs, seeds 1 and 2."""
    spec = tmp_path / "spec.toml"
    quoted = ", ".join(f'"{m}"' for m in methods)
    spec.write_text(textwrap.dedent(f'''
        [study]
        name = "{name}"
        methods = [{quoted}]
        seeds = [1, 2]
        steps = {steps}
        [scenario]
        users = 8
        servers = 3
    '''))  # fmt: skip
    return spec


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "userpolicies.py").write_text(POLICY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "py:userpolicies:make"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """SB3 TD3 on the score variant and PPO / MaskablePPO on the targets variant, a few
    hundred steps each, saved as .zip files; and the stream they were trained on."""
    warnings.filterwarnings("ignore")
    from stable_baselines3 import PPO, TD3

    tmp = tmp_path_factory.mktemp("sb3")
    env = DTASMEnv(scenario=SCENARIO, stream_seed=STREAM_SEED, stream_steps=STEPS)
    TD3("MlpPolicy", env, learning_starts=50, policy_kwargs={"net_arch": [32]}, seed=0).learn(
        300
    ).save(tmp / "td3.zip")
    targets = DTASMEnv(
        scenario=SCENARIO, stream_seed=STREAM_SEED, stream_steps=STEPS, action_type="targets"
    )
    PPO("MlpPolicy", targets, n_steps=64, batch_size=32, seed=0).learn(192).save(tmp / "ppo.zip")
    models = {"td3": tmp / "td3.zip", "ppo": tmp / "ppo.zip"}
    try:
        from sb3_contrib import MaskablePPO

        MaskablePPO("MlpPolicy", targets, n_steps=64, batch_size=32, seed=0).learn(128).save(
            tmp / "mppo.zip"
        )
        models["mppo"] = tmp / "mppo.zip"
    except ImportError:
        pass
    stream = tmp / "s.json"
    files.write_json(stream, env.stream.to_dict())
    return models, stream, tmp


def test_sb3_models_in_a_rollout_beside_milp(trained, tmp_path, capsys):
    models, stream, _ = trained
    names = [f"sb3:{models[k]}" for k in sorted(models)] + ["milp"]
    out = tmp_path / "r.csv"
    assert rollout.main([str(stream), "--methods", ",".join(names), "--out", str(out),
                         "--quiet", "--time-limit", "5"]) == 0  # fmt: skip
    rows = records.read_rows(out)
    for name in names:
        mine = [r for r in rows if r["method"] == name]
        assert [int(r["step"]) for r in mine] == list(range(STEPS))
    milp = [float(r["cloud_load_bytes"]) for r in rows if r["method"] == "milp"]
    for name in names[:-1]:  # the same states' optimum is never beaten step 0
        first = next(r for r in rows if r["method"] == name and r["step"] == "0")
        assert float(first["cloud_load_bytes"]) >= milp[0] - 1e-6


def test_an_sb3_model_in_a_study_spec(trained, tmp_path):
    models, _, _ = trained
    spec = small_spec(tmp_path, "sb3", [f"sb3:{models['ppo']}", "danearest"], steps=5)
    assert study.main([str(spec), "--out", str(tmp_path / "st"), "--no-plots"]) == 0
    rows = records.read_rows(tmp_path / "st" / "results.csv")
    assert sum(r["method"].startswith("sb3:") for r in rows) == 2 * 5


def test_sb3_loading_runs_no_pickled_code(trained, monkeypatch):
    models, _, _ = trained
    import cloudpickle

    def refuse(*a, **k):
        raise AssertionError("unpickled")

    monkeypatch.setattr(cloudpickle, "loads", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    import torch

    # the read itself never unpickles, whatever the caller asked for
    weights_only, real = [], functools.partial(torch.load, weights_only=True)

    def recording(*args, **kwargs):  # SB3 reads the weights itself: it must pass the flag
        weights_only.append(kwargs.pop("weights_only", None))  # what the caller asked for
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording)
    from dtasm_opt.solvers.external.sb3_policy import make_sb3

    for path in models.values():
        make_sb3(f"sb3:{path}", dtasm_opt.MethodSettings())
    assert weights_only and all(w is True for w in weights_only)


def test_sb3_greedy_actions_equal_sb3s_own_load(trained):
    models, stream_path, _ = trained
    from stable_baselines3 import PPO, TD3

    from dtasm_opt.rl.actions import scores_to_action
    from dtasm_opt.rl.observation import observe
    from dtasm_opt.solvers.external.sb3_policy import make_sb3

    inst = files.read_stream(stream_path).instance(0)
    for key, algo in (("td3", TD3), ("ppo", PPO)):
        ours = make_sb3(f"sb3:{models[key]}", dtasm_opt.MethodSettings()).decide(inst, 0)
        theirs, _ = algo.load(models[key], device="cpu").predict(observe(inst), deterministic=True)
        if key == "td3":
            theirs = scores_to_action(theirs, inst.n_users, inst.n_servers)
        np.testing.assert_array_equal(ours.action, np.asarray(theirs).reshape(-1))


def test_an_sb3_model_of_another_size_is_refused(trained, tmp_path, capsys):
    models, _, _ = trained
    other = tmp_path / "o.json"
    files.write_json(other, generate_stream(Scenario(users=9, servers=3), 1, 2).to_dict())
    out = tmp_path / "r.csv"
    assert rollout.main([str(other), "--methods", f"sb3:{models['td3']}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another size" in err[0]
    assert not out.exists()


def test_a_model_with_pickled_network_options_is_refused(tmp_path, capsys):
    import torch
    from stable_baselines3 import TD3

    env = DTASMEnv(scenario=SCENARIO, stream_steps=STEPS)
    kwargs = {"net_arch": [8], "activation_fn": torch.nn.Tanh}  # a class: pickled
    TD3("MlpPolicy", env, learning_starts=5, policy_kwargs=kwargs).learn(6).save(tmp_path / "m")
    inst = tmp_path / "i.json"
    files.write_json(inst, env.stream.instance(0).to_dict())
    assert solve.main([str(inst), "--method", f"sb3:{tmp_path / 'm.zip'}"]) == 2
    assert "pickled" in capsys.readouterr().err


def test_a_python_policy_in_solve_rollout_and_a_study(user_module, tmp_path, capsys):
    stream = generate_stream(SCENARIO, 4, 5)
    path = tmp_path / "s.json"
    files.write_json(path, stream.to_dict())
    out = tmp_path / "r.csv"
    assert rollout.main([str(path), "--methods", f"{user_module},danearest", "--out", str(out),
                         "--quiet"]) == 0  # fmt: skip
    rows = [r for r in records.read_rows(out) if r["method"] == user_module]
    server = stream.initial_server
    for t, r in enumerate(rows):  # the rows are the simulator's judgement of the rule
        inst = stream.instance(t, server)
        s = inst.users.server
        o = simulator.apply(inst, np.where(s == inst.cloud, inst.users.ran, s))
        assert float(r["cloud_load_bytes"]) == o.cloud_load_bytes
        server = o.final_server
    spec = small_spec(tmp_path, "mine", [user_module, "nearest"], steps=4)
    assert study.main([str(spec), "--out", str(tmp_path / "st"), "--no-plots"]) == 0
    mine = [r for r in records.read_rows(tmp_path / "st" / "results.csv")
            if r["method"] == user_module]  # fmt: skip
    assert len(mine) == 2 * 4


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("py:nosuchmodule:make", "cannot import"),
        ("py:json:nothing", "no callable"),
        ("py:json", "py:package.module:factory"),
    ],  # fmt: skip
)
def test_bad_python_policies_are_one_line(tmp_path, capsys, name, what):
    inst = tmp_path / "i.json"
    files.write_json(inst, generate_stream(SCENARIO, 1, 1).instance(0).to_dict())
    assert solve.main([str(inst), "--method", name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and what in err[0]


def test_evaluate_measures_any_policy_against_milp_and_the_bound():
    stream = small_stream(2, 30, 3, 6, 0.3, 1.2)  # ESs at 30 % of their capacity
    result = dtasm_opt.evaluate(lambda inst: inst.users.ran, stream, name="nearest-fn")
    by = {g["method"]: g for g in result.gaps}
    assert set(by) == {"nearest-fn", "milp"}
    assert len(result.records) == 2 * 6
    assert result.bound_mb is not None and result.bound_mb > 0
    for g in result.gaps:  # the bound is below everyone's realised load
        assert g["cloud_mb"] >= result.bound_mb - 1e-9
    assert by["nearest-fn"]["vs_reference_mb"] == pytest.approx(
        by["nearest-fn"]["cloud_mb"] - by["milp"]["cloud_mb"]
    )
    assert "nearest-fn" in result.table() and "hindsight bound" in result.table()
