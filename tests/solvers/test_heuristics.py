"""Property checks of the paper's five baselines (docs/design.md §7) on generated streams."""

from __future__ import annotations

import numpy as np
import pytest

from dtasm_opt.core import simulator
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.method import MethodSettings, method_rng
from dtasm_opt.solvers.heuristics.womig import WOMIG_DYNAMIC_PERIOD, WoMigDynamic
from dtasm_opt.solvers.registry import make_method

BASELINES = ("womig-stable", "womig-dynamic", "random", "nearest", "danearest")


@pytest.fixture(scope="module")
def stream():
    # Overloaded on purpose (60 users per ES) so that rejections and failures happen.
    return generate_stream(Scenario(users=240, servers=4), seed=11, steps=40)


def rollout(stream, name: str, steps: int, seed: int = 0):
    """Yield (instance, action, outcome) per step, the state carried by the simulator."""
    method = make_method(name, MethodSettings(seed=seed))
    server = stream.initial_server
    for t in range(steps):
        inst = stream.instance(t, server)
        action = np.asarray(method.decide(inst, t).action)
        out = simulator.apply(inst, action)
        yield inst, action, out
        server = out.final_server


@pytest.mark.parametrize("name", BASELINES)
def test_registry_builds_each_baseline(name):
    assert make_method(name).name == name


def test_nearest_targets_the_users_ran(stream):
    for inst, action, _ in rollout(stream, "nearest", 30):
        assert np.array_equal(action, inst.users.ran)


def test_danearest_never_fails_a_migration(stream):
    # 200 steps: the stream wraps (a new episode every 40 steps), the state keeps evolving
    total_migrated = 0
    for inst, action, out in rollout(stream, "danearest", 200):
        assert out.migration_failed == 0
        assert not (out.outcome == simulator.FAILED).any()
        # its action is y or s, never the cloud
        assert np.all((action == inst.users.ran) | (action == inst.users.server))
        total_migrated += out.migrated
    assert total_migrated > 0  # it does move users, so the property is not vacuous


def test_nearest_does_fail_on_the_same_stream(stream):
    # the contrast that makes the DANearest check meaningful
    assert sum(out.migration_failed for _, _, out in rollout(stream, "nearest", 30)) > 0


def test_womig_stable_never_moves_to_another_es(stream):
    for inst, action, out in rollout(stream, "womig-stable", 60):
        s = inst.users.server
        assert np.array_equal(action, s)
        assert np.all((out.final_server == s) | (out.final_server == inst.cloud))
        assert out.migration_failed == 0


def test_womig_dynamic_redraws_only_at_multiples_of_the_period(stream):
    inst = stream.instance(0)
    seed, name = 5, "womig-dynamic"
    method = make_method(name, MethodSettings(seed=seed))
    reference = method_rng(seed, name)  # the same stream of draws, drawn by hand
    k = WOMIG_DYNAMIC_PERIOD
    assert k == 500
    for t in (0, 1, 2, 499, 500, 501, 999, 1000, 1001, 1500):
        action = np.asarray(method.decide(inst, t).action)
        if t % k == 0:
            expected = reference.integers(0, inst.n_servers, size=inst.n_users)
            assert np.array_equal(action, expected)
            assert action.max() < inst.cloud
        else:
            assert np.array_equal(action, inst.users.server)


def test_womig_dynamic_period_is_a_setting(stream):
    inst = stream.instance(0)
    method = WoMigDynamic(rng=np.random.default_rng(0), period=3)
    redrawn = [
        not np.array_equal(method.decide(inst, t).action, inst.users.server) for t in range(7)
    ]
    assert redrawn == [True, False, False, True, False, False, True]


def test_random_draws_only_edge_servers_and_is_seeded(stream):
    a = [act for _, act, _ in rollout(stream, "random", 20, seed=3)]
    b = [act for _, act, _ in rollout(stream, "random", 20, seed=3)]
    c = [act for _, act, _ in rollout(stream, "random", 20, seed=4)]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))
    stacked = np.concatenate(a)
    assert stacked.min() == 0 and stacked.max() == stream.n_servers - 1  # every ES, no cloud


def test_method_rng_streams_differ_by_name_and_seed():
    draw = lambda seed, name: method_rng(seed, name).integers(0, 2**62, size=4)  # noqa: E731
    assert np.array_equal(draw(1, "random"), draw(1, "random"))
    assert not np.array_equal(draw(1, "random"), draw(1, "womig-dynamic"))
    assert not np.array_equal(draw(1, "random"), draw(2, "random"))


def test_random_methods_do_not_share_draws(stream):
    # adding another random method in the same rollout changes nothing for "random"
    inst = stream.instance(0)
    alone = make_method("random", MethodSettings(seed=9))
    first = make_method("random", MethodSettings(seed=9))
    other = make_method("womig-dynamic", MethodSettings(seed=9))
    for t in range(5):
        other.decide(inst, 0)
        assert np.array_equal(alone.decide(inst, t).action, first.decide(inst, t).action)
