"""TD3: determinism, learning on a tiny instance with a brute-forced optimum, checkpoints,
the td3:PATH method and the train CLI."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch

from dtasm_opt.core import files, records, simulator
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.core.instance import Apps, Servers
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.stream import Stream
from dtasm_opt.errors import InputError
from dtasm_opt.rl.env import DTASMEnv
from dtasm_opt.solve import main as solve_main
from dtasm_opt.solvers.registry import make_method
from dtasm_opt.solvers.td3 import checkpoint
from dtasm_opt.solvers.td3.agent import Agent
from dtasm_opt.solvers.td3.config import TD3Config, TrainOptions
from dtasm_opt.solvers.td3.training import train
from dtasm_opt.train import main

SMALL = dict(hidden=(32, 32), buffer_size=256, batch_size=16, learning_starts=8, threads=1)


def tiny_stream() -> Stream:
    """U=4 users on RAN 0, H=2 ESs; ES 0 holds two of them, ES 1 one."""
    kbit = 8 * 1024
    servers = Servers(
        capacity_hz=np.array([5.6e9, 4.4e9]),
        bandwidth_bps=np.array([[0.0, 60e6], [60e6, 0.0]]),
        delay_s=np.array([[0.0, 2e-3], [2e-3, 0.0]]),
        cloud_bandwidth_bps=np.array([80e6, 80e6]),
        cloud_delay_s=np.array([15e-3, 15e-3]),
    )
    apps = Apps(
        sf_capacity_hz=np.array([250e6]),
        checkpoint_share=np.array([0.25]),
        suspend_cycles_per_bit=np.array([0.4]),
        resume_cycles_per_bit=np.array([0.4]),
        sf_prepare_s=np.array([0.15]),
    )
    one = np.ones((1, 4))
    return Stream(
        servers=servers,
        apps=apps,
        app=np.zeros(4, dtype=np.int64),
        latency_limit_s=np.full(4, 0.9),
        initial_server=np.zeros(4, dtype=np.int64),
        ran=np.zeros((1, 4), dtype=np.int64),
        task_bits=np.array([[600.0, 700.0, 800.0, 1000.0]]) * kbit,
        result_bits=15 * kbit * one,
        context_bits=2 * 8 * 1024 * 1024 * one,
        cycles_per_bit=400 * one,
        xi_s=1.2,
        name="tiny",
    )


def brute_force(stream: Stream) -> tuple[float, int]:
    """Least cloud load over all ES-only actions of step 0, and how many actions reach it."""
    inst = stream.instance(0)
    loads = [
        simulator.apply(inst, np.array(a)).cloud_load_bytes
        for a in itertools.product(range(stream.n_servers), repeat=stream.n_users)
    ]
    best = min(loads)
    return best, sum(load == best for load in loads)


def fill(agent: Agent, stream: Stream, steps: int, seed: int) -> None:
    env = DTASMEnv(stream)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        a = agent.act(obs, explore=True)
        nxt, r, term, trunc, _ = env.step(a.reshape(stream.n_users, stream.n_servers))
        agent.buffer.add(obs, a, r, nxt, term)
        obs = env.reset()[0] if trunc else nxt


def params(agent: Agent) -> list[torch.Tensor]:
    nets = (agent.actor, agent.qf1, agent.qf2, agent.actor_t, agent.qf1_t, agent.qf2_t)
    return [p.detach().clone() for n in nets for p in n.parameters()]


def test_config_refuses_bad_values():
    with pytest.raises(InputError, match="gamma"):
        TD3Config(gamma=1.0)
    with pytest.raises(InputError, match="policy_delay"):
        TD3Config(policy_delay=0)


def test_same_seed_same_first_updates():
    stream = generate_stream(Scenario(users=10, servers=3), seed=2, steps=5)
    cfg = TD3Config(**SMALL, policy_delay=2, seed=11)
    runs = []
    for _ in range(2):
        agent = Agent(cfg, 70, 10, 3)
        fill(agent, stream, 20, seed=4)
        losses = [agent.update() for _ in range(6)]
        runs.append((params(agent), losses))
    (pa, la), (pb, lb) = runs
    assert la == lb
    assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))
    other = Agent(TD3Config(**SMALL, policy_delay=2, seed=12), 70, 10, 3)
    assert not torch.equal(params(other)[0], pa[0])


def test_learns_the_tiny_optimum_and_critic_loss_falls(tmp_path):
    stream = tiny_stream()
    best, n_best = brute_force(stream)
    assert n_best <= 4  # at most a quarter of the 16 actions is optimal: not reached by luck
    cfg = TD3Config(**SMALL, policy_delay=2, lr=1e-3, explore_noise=1.0, seed=0)
    train(stream, cfg, tmp_path, 600, checkpoint_every=600, progress=False)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "steps.csv")))
    critic = [float(r["critic_loss"]) for r in rows if r["critic_loss"]]
    assert np.mean(critic[-50:]) < np.mean(critic[:50])
    policy = make_method(f"td3:{tmp_path / 'last.pt'}")
    inst = stream.instance(0)
    out = simulator.apply(inst, policy.decide(inst, 0).action)
    assert out.cloud_load_bytes == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("actor", ["flat", "shared"])
def test_checkpoint_round_trip_and_refusal(tmp_path, actor):
    stream = generate_stream(Scenario(users=10, servers=3), seed=2, steps=5)
    cfg = TD3Config(**SMALL, actor=actor, seed=3)
    train(stream, cfg, tmp_path, 20, checkpoint_every=10, progress=False)
    doc = checkpoint.load(tmp_path / "last.pt")  # weights_only=True inside
    agent = Agent(TD3Config.from_dict(doc["config"]), doc["obs_dim"], 10, 3)
    agent.load_state_dict(doc["agent"])
    policy = make_method(f"td3:{tmp_path / 'policy.pt'}")
    env = DTASMEnv(stream)
    obs, _ = env.reset(seed=0)
    for t in range(5):
        greedy = agent.act(obs, explore=False).reshape(10, 3).argmax(axis=1)
        np.testing.assert_array_equal(policy.decide(env.instance, t).action, greedy)
        obs, *_ = env.step(greedy[:, None] == np.arange(3))
    other = generate_stream(Scenario(users=10, servers=3), seed=9, steps=1).instance(0)
    with pytest.raises(InputError, match="edge servers and links"):
        policy.decide(other, 0)
    bigger = generate_stream(Scenario(users=11, servers=3), seed=2, steps=1).instance(0)
    with pytest.raises(InputError, match="number of users"):
        policy.decide(bigger, 0)


@pytest.mark.parametrize("masked", [False, True])
def test_resume_equals_a_straight_run(tmp_path, masked):
    stream = generate_stream(Scenario(users=10, servers=3, xi_s=0.6), seed=2, steps=7)
    cfg = TD3Config(**SMALL, policy_delay=3, seed=5, mask_infeasible=masked, stay_bias=0.5)
    kw = dict(checkpoint_every=15, options=TrainOptions(warm_start_steps=20), progress=False)
    train(stream, cfg, tmp_path / "a", 40, **kw)
    train(stream, cfg, tmp_path / "b", 15, **kw)
    train(stream, cfg, tmp_path / "b", 40, resume=True, **kw)
    a = checkpoint.load(tmp_path / "a" / "last.pt")["agent"]
    b = checkpoint.load(tmp_path / "b" / "last.pt")["agent"]
    for net in ("actor", "qf1", "qf2_t"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])

    def rows(d):  # every column but the timing ones
        return [
            {k: v for k, v in r.items() if k not in records.TIMING_COLUMNS}
            for r in records.read_rows(d / "steps.csv")
        ]

    assert len(rows(tmp_path / "a")) == 40
    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["--steps", "5", "--out", str(tmp_path)]) == 2
    assert main([str(tmp_path / "missing.json"), "--steps", "5", "--out", str(tmp_path)]) == 2
    assert main(["--users", "4", "--steps", "5", "--out", str(tmp_path), "--resume"]) == 2
    assert "error:" in capsys.readouterr().err


def test_masked_agent_acts_and_learns_only_on_feasible_ess(tmp_path):
    stream = generate_stream(Scenario(users=10, servers=4, xi_s=0.6), seed=3, steps=6)
    cfg = TD3Config(**SMALL, policy_delay=2, mask_infeasible=True, explore_noise=1.0, seed=1)
    train(stream, cfg, tmp_path, 40, checkpoint_every=40, progress=False)
    doc = checkpoint.load(tmp_path / "last.pt")
    agent = Agent(TD3Config.from_dict(doc["config"]), doc["obs_dim"], 10, 4)
    agent.load_state_dict(doc["agent"])
    buf = agent.buffer
    assert buf.masked and not buf.masks[: buf.size].all()  # some ESs were masked
    np.testing.assert_array_equal(buf.actions[: buf.size][~buf.masks[: buf.size]], 0.0)
    sums = buf.actions[: buf.size].reshape(-1, 10, 4).sum(axis=2)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)  # the stored action is a masked softmax
    assert all(np.isfinite(agent.update().critic) for _ in range(4))
    rows = records.read_rows(tmp_path / "steps.csv")
    assert rows and all(r["migration_failed"] == "0" for r in rows)  # every step
    env = DTASMEnv(stream)
    env.reset(seed=0)
    with pytest.raises(InputError, match="mask"):
        agent.act(np.zeros(70, np.float32), explore=False)
    policy = make_method(f"td3:{tmp_path / 'policy.pt'}")
    servers = stream.initial_server
    for t in range(stream.n_steps):  # the greedy method applies the mask too
        inst = stream.instance(t, servers)
        out = simulator.apply(inst, policy.decide(inst, t).action)
        assert out.migration_failed == 0
        servers = out.final_server


def test_large_stay_bias_is_the_stay_rule():
    stream = generate_stream(Scenario(users=10, servers=3), seed=2, steps=3)
    agent = Agent(TD3Config(**SMALL, stay_bias=50.0), 70, 10, 3)
    env = DTASMEnv(stream)
    obs, _ = env.reset(seed=0)
    env.step_targets(np.r_[np.zeros(5, np.int64), np.full(5, 3)])  # half to the cloud
    inst = env.instance
    from dtasm_opt.rl.actions import home_targets
    from dtasm_opt.rl.env import observe

    a = agent.act(observe(inst), explore=False).reshape(10, 3).argmax(axis=1)
    assert (inst.users.server == 3).any()
    np.testing.assert_array_equal(a, home_targets(inst))


def test_milp_warm_start_imitates_the_teacher(tmp_path):
    """After a warm start on the tiny instance the greedy actor takes the teacher's action."""
    pytest.importorskip("highspy")
    stream = tiny_stream()
    inst = stream.instance(0)
    teacher = make_method("milp", MethodSettings(time_limit_s=5.0, second_stage="migrations"))
    a = np.asarray(teacher.decide(inst, 0).action)
    labels = np.where(a == inst.cloud, inst.users.server, a)  # the agent names ESs only
    cfg = TD3Config(**SMALL, bc_lr=3e-3, seed=0)
    train(
        stream,
        cfg,
        tmp_path,
        40,
        checkpoint_every=40,
        options=TrainOptions(
            warm_start_steps=40,
            teacher="milp",
            teacher_time_limit_s=5.0,
            teacher_second_stage="migrations",
        ),
        progress=False,
    )
    policy = make_method(f"td3:{tmp_path / 'policy.pt'}")
    np.testing.assert_array_equal(policy.decide(inst, 0).action, labels)
    best, _ = brute_force(stream)
    assert simulator.apply(inst, labels).cloud_load_bytes == pytest.approx(best, rel=1e-12)


def test_sb3_td3_runs_on_the_env():
    sb3 = pytest.importorskip("stable_baselines3")
    stream = generate_stream(Scenario(users=6, servers=2), seed=2, steps=5)
    env = DTASMEnv(stream)
    model = sb3.TD3(
        "MlpPolicy",
        env,
        buffer_size=64,
        batch_size=8,
        learning_starts=5,
        policy_delay=2,
        policy_kwargs={"net_arch": [16]},
        seed=0,
        device="cpu",
    )
    model.learn(total_timesteps=12)
    assert model.num_timesteps == 12
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (6, 2)
    *_, info = env.step(action)
    assert "cloud_load_bytes" in info


class _Payload:
    """Unpickling this runs code (it creates a marker file): what a hostile checkpoint does."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_none(tmp_path, capsys):
    """A .pt whose pickle calls a function: torch.load(weights_only=True) refuses it, so
    `solve --method td3:...` exits 2 with one line and the code never runs."""
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.CHECKPOINT_FORMAT, "x": _Payload(str(marker))}, evil)
    with pytest.raises(InputError, match="not a readable checkpoint"):
        checkpoint.load(evil)
    inst = tmp_path / "i.json"
    files.write_json(inst, generate_instance(Scenario(users=4, servers=2), 1).to_dict())
    assert solve_main([str(inst), "--method", f"td3:{evil}"]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert not marker.exists()


def test_every_checkpoint_read_passes_weights_only(tmp_path, monkeypatch):
    stream = generate_stream(Scenario(users=6, servers=2), seed=2, steps=3)
    train(stream, TD3Config(**SMALL, seed=1), tmp_path, 4, checkpoint_every=2, progress=False)
    calls = []
    # the read itself never unpickles, whatever the caller asked for
    real = functools.partial(torch.load, weights_only=True)

    def recording(*args, **kwargs):
        calls.append(kwargs.pop("weights_only", None))  # what the caller asked for
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording)
    checkpoint.load(tmp_path / "last.pt")
    make_method(f"td3:{tmp_path / 'policy.pt'}")
    assert calls and all(w is True for w in calls)
