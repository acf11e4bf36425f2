"""Every branch of docs/design.md §3 on tiny hand-built instances (see ``tiny.py``).

Downtimes are worked out by hand from the tiny system's round numbers (Vm = 8e6 bits, app 0):
ds = 0.08 s, dr = 0.04 s, sync(0->1) = 0.401 s, sync(0->cloud) = 0.81 s,
sync(1->cloud) = 0.42 s; a user's load is (3.9e6 + 1e5) bits = 5e5 bytes unless overridden.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from tiny import CLOUD, make_instance

from dtasm_opt.core import physics, simulator
from dtasm_opt.core.generator import Scenario, generate_instance
from dtasm_opt.core.simulator import (
    ADMITTED,
    FAILED,
    REJECTED_CAPACITY,
    REJECTED_LATENCY,
    STAYED_CLOUD,
    TO_CLOUD,
)
from dtasm_opt.errors import InputError

LOAD_BYTES = 5e5  # (3.9e6 + 1e5) / 8


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=0.0)


def check(out, *, final, outcome, downtime, migrated, failed, rejected, cloud_bytes):
    assert out.final_server.tolist() == final
    assert out.outcome.tolist() == outcome
    assert out.downtime_s.tolist() == [approx(d) for d in downtime]
    assert out.migrated == migrated
    assert out.migration_failed == failed
    assert out.rejected == rejected
    assert out.users_on_edge == sum(f != CLOUD for f in final)
    assert out.cloud_load_bytes == approx(cloud_bytes)
    mean = sum(downtime) / migrated if migrated else 0.0
    assert out.mean_downtime_s == approx(mean)


# Rule 1: the target is the cloud.


@pytest.mark.parametrize(("server", "downtime"), [(0, 0.08 + 0.81), (1, 0.08 + 0.42)])
def test_rule1_edge_to_cloud_migrates(server, downtime):
    out = simulator.apply(make_instance([{"server": server}]), [CLOUD])
    check(out, final=[CLOUD], outcome=[TO_CLOUD], downtime=[downtime], migrated=1,
          failed=0, rejected=0, cloud_bytes=LOAD_BYTES)  # fmt: skip


def test_rule1_cloud_to_cloud_nothing_happens():
    out = simulator.apply(make_instance([{"server": CLOUD}]), [CLOUD])
    check(out, final=[CLOUD], outcome=[STAYED_CLOUD], downtime=[0.0], migrated=0,
          failed=0, rejected=0, cloud_bytes=LOAD_BYTES)  # fmt: skip
    assert out.reward == approx(-LOAD_BYTES / 2**20)


# Rule 2: a migration to another ES whose downtime (3) exceeds xi fails.


def test_rule2_failed_migration_from_edge():
    # 0 -> 1 downtime (3): (0.08 + max(0.401, 0.1)) + 0.04 = 0.521 > xi = 0.5; eq. (8):
    # 0.08 + 0.401 + 0.42 = 0.901
    inst = make_instance([{"server": 0, "ran": 1}], xi_s=0.5)
    out = simulator.apply(inst, [1])
    check(out, final=[CLOUD], outcome=[FAILED], downtime=[0.901], migrated=1, failed=1,
          rejected=0, cloud_bytes=LOAD_BYTES)  # fmt: skip


def test_rule2_from_cloud_stays_without_counting():
    # cloud -> 0: (0 + max(0.81, 0.1)) + 0.04 = 0.85 > xi = 0.5: stays in the cloud
    inst = make_instance([{"server": CLOUD, "ran": 0}], xi_s=0.5)
    out = simulator.apply(inst, [0])
    check(out, final=[CLOUD], outcome=[STAYED_CLOUD], downtime=[0.0], migrated=0, failed=0,
          rejected=0, cloud_bytes=LOAD_BYTES)  # fmt: skip


# Rule 3: candidates that cannot meet the latency limit (dc >= tau) or exceed P[h].


@pytest.mark.parametrize(
    ("server", "downtime", "migrated"),
    [
        (0, 0.08 + 0.81, 1),  # s == h: ds + sync(h -> cloud)
        (1, 0.08 + 0.401 + 0.81, 1),  # s another ES: eq. (8) via h = 0
        (CLOUD, 0.0, 0),  # from the cloud: stays, but counted rejected
    ],
)
def test_rule3_latency_rejection(server, downtime, migrated):
    # RAN 1 -> ES 0: dc = 4e6 / 2e7 + 0.002 = 0.202 >= tau = 0.2
    inst = make_instance([{"server": server, "ran": 1, "latency_limit_s": 0.2}])
    out = simulator.apply(inst, [0])
    check(out, final=[CLOUD], outcome=[REJECTED_LATENCY], downtime=[downtime],
          migrated=migrated, failed=0, rejected=1, cloud_bytes=LOAD_BYTES)  # fmt: skip


@pytest.mark.parametrize(
    ("server", "downtime", "migrated"),
    [(0, 0.08 + 0.81, 1), (1, 0.08 + 0.401 + 0.81, 1), (CLOUD, 0.0, 0)],
)
def test_rule3_capacity_rejection(server, downtime, migrated):
    # Prc = 100 * 3.9e6 / (1 - 0) = 3.9e8 > P[0] = one ulp below it
    cap = math.nextafter(3.9e8, 0.0)
    inst = make_instance([{"server": server, "ran": 0}], capacity_hz=(cap, 1e10))
    out = simulator.apply(inst, [0])
    check(out, final=[CLOUD], outcome=[REJECTED_LATENCY], downtime=[downtime],
          migrated=migrated, failed=0, rejected=1, cloud_bytes=LOAD_BYTES)  # fmt: skip


def test_rule3_capacity_exactly_equal_is_admitted():
    inst = make_instance([{"server": 0, "ran": 0}], capacity_hz=(3.9e8, 1e10))
    out = simulator.apply(inst, [0])
    check(out, final=[0], outcome=[ADMITTED], downtime=[0.0], migrated=0, failed=0,
          rejected=0, cloud_bytes=0.0)  # fmt: skip


# Rule 4: the knapsack P3 per ES.


def test_rule4_knapsack_takes_the_best_subset_not_the_greedy_one():
    # On RAN 0 with tau = 1, kappa = 1000: Prc = 1000 * Vt. P[0] = 1e10.
    # A: 6e9, B: 5e9, C: 4.9e9, D (from the cloud): 1e8. All ratios are equal, so greedy in
    # ratio order takes A then D (6.1e6 bits); the optimum is B + C + D = 1e10 exactly (fits:
    # the sum equals P) with 1e7 bits.
    users = [
        {"server": 0, "task_bits": 6e6, "result_bits": 0.0, "cycles_per_bit": 1000.0},
        {"server": 0, "task_bits": 5e6, "result_bits": 0.0, "cycles_per_bit": 1000.0},
        {"server": 0, "task_bits": 4.9e6, "result_bits": 0.0, "cycles_per_bit": 1000.0},
        {"server": CLOUD, "task_bits": 1e5, "result_bits": 0.0, "cycles_per_bit": 1000.0},
    ]
    out = simulator.apply(make_instance(users), [0, 0, 0, 0])
    # A is rejected on its own ES: ds + sync(0 -> cloud) = 0.89; D arrives from the cloud:
    # (0 + max(0.81, 0)) + 0.04 = 0.85 (app 0's SF is active on ES 0)
    check(out, final=[CLOUD, 0, 0, 0],
          outcome=[REJECTED_CAPACITY, ADMITTED, ADMITTED, ADMITTED],
          downtime=[0.89, 0.0, 0.0, 0.85], migrated=2, failed=0, rejected=1,
          cloud_bytes=6e6 / 8)  # fmt: skip


def test_rule4_rejections_by_origin():
    # Three users want ES 0 with Prc = 6e9 each (only one fits into 1e10): the largest load
    # wins. W (on ES 0) 6.2e6 bits, E (on ES 1) 6.1e6, D (in the cloud) 6e6.
    base = {"ran": 0, "task_bits": 6e6, "cycles_per_bit": 1000.0}
    users = [
        {**base, "server": 0, "result_bits": 2e5},
        {**base, "server": 1, "result_bits": 1e5},
        {**base, "server": CLOUD, "result_bits": 0.0},
    ]
    out = simulator.apply(make_instance(users), [0, 0, 0])
    # E: migration 1 -> 0 is (0.08 + 0.401) + 0.04 = 0.521 <= 1.2, so a candidate; rejected:
    # eq. (8) 0.08 + 0.401 + 0.81 = 1.291. D: rejected from the cloud, downtime 0.
    check(out, final=[0, CLOUD, CLOUD],
          outcome=[ADMITTED, REJECTED_CAPACITY, REJECTED_CAPACITY],
          downtime=[0.0, 1.291, 0.0], migrated=1, failed=0, rejected=2,
          cloud_bytes=(6.1e6 + 6e6) / 8)  # fmt: skip


def test_all_fit_all_admitted_and_stayers_have_no_downtime():
    users = [{"server": 0, "ran": 0}, {"server": 1, "ran": 0}, {"server": 1, "ran": 1}]
    out = simulator.apply(make_instance(users), [0, 1, 1])
    check(out, final=[0, 1, 1], outcome=[ADMITTED] * 3, downtime=[0.0] * 3, migrated=0,
          failed=0, rejected=0, cloud_bytes=0.0)  # fmt: skip


def test_successful_migration_downtime_eq3():
    out = simulator.apply(make_instance([{"server": 0, "ran": 1}]), [1])
    check(out, final=[1], outcome=[ADMITTED], downtime=[0.521], migrated=1, failed=0,
          rejected=0, cloud_bytes=0.0)  # fmt: skip


# SF preparation right at the xi threshold (exact comparisons).

MOVER = {"server": 0, "ran": 1, "context_bits": 1e6}  # app 0, 0 -> 1, dc = 0
# ds = 1e6 * 1e-8 = 0.01, sync(0->1) = 1e6 / 2e7 + 0.001 = 0.051, dsf = 0.1, dr = 0.005:
# SF inactive: (0.01 + 0.1) + 0.005 = 0.115; active: (0.01 + 0.051) + 0.005 = 0.066.


def _mover_downtime(inst):
    return float(physics.target_physics(inst, np.array([1] * inst.n_users)).migration_s[0])


def test_downtime_equal_to_xi_is_not_a_failure():
    inst = make_instance([MOVER])
    down = _mover_downtime(inst)
    assert down == approx(0.115)
    at = simulator.apply(make_instance([MOVER], xi_s=down), [1])
    check(at, final=[1], outcome=[ADMITTED], downtime=[0.115], migrated=1, failed=0,
          rejected=0, cloud_bytes=0.0)  # fmt: skip
    above = simulator.apply(make_instance([MOVER], xi_s=math.nextafter(down, 0.0)), [1])
    # eq. (8): 0.01 + 0.051 + sync(1 -> cloud) = 1e6 / 2e7 + 0.02 = 0.07
    check(above, final=[CLOUD], outcome=[FAILED], downtime=[0.01 + 0.051 + 0.07],
          migrated=1, failed=1, rejected=0, cloud_bytes=LOAD_BYTES)  # fmt: skip


@pytest.mark.parametrize(
    ("resident", "resident_action", "admitted"),
    [
        ({"server": 1, "ran": 1, "app": 0}, 1, True),  # app 0 SF active on ES 1
        ({"server": 1, "ran": 1, "app": 0}, CLOUD, True),  # leaving now: still active
        ({"server": 1, "ran": 1, "app": 1}, 1, False),  # another kind's SF: inactive
        ({"server": CLOUD, "ran": 1, "app": 0}, CLOUD, False),  # the cloud activates nothing
    ],
)
def test_sf_activation_decides_at_the_threshold(resident, resident_action, admitted):
    xi = math.nextafter(_mover_downtime(make_instance([MOVER])), 0.0)  # a hair below 0.115
    inst = make_instance([MOVER, resident], xi_s=xi)
    out = simulator.apply(inst, [1, resident_action])
    if admitted:
        assert out.outcome[0] == ADMITTED and out.final_server[0] == 1
        assert out.downtime_s[0] == approx(0.066)
        assert out.migration_failed == 0
    else:
        assert out.outcome[0] == FAILED and out.final_server[0] == CLOUD
        assert out.migration_failed == 1


# Rule 6: the final servers are the new state; activation follows them.


def test_rule6_new_state_and_activation_next_step():
    mover = dict(MOVER)
    follower = {**MOVER, "server": 0}
    inst = make_instance([mover, follower])
    inst2, out = simulator.step(inst, [1, 0])
    # step 1: the mover finds app 0 inactive on ES 1 (0.115); the follower stays on ES 0
    assert out.final_server.tolist() == [1, 0]
    assert out.downtime_s.tolist() == [approx(0.115), 0.0]
    assert inst2.users.server.tolist() == [1, 0]
    assert physics.sf_active(inst2.users.server, inst2.users.app, 2, 2).tolist() == [
        [True, False],
        [True, False],
    ]
    # step 2 on the new state: the follower finds app 0 active on ES 1 (0.066)
    out2 = simulator.apply(inst2, [1, 1])
    assert out2.final_server.tolist() == [1, 1]
    assert out2.downtime_s.tolist() == [0.0, approx(0.066)]
    assert out2.migrated == 1
    # the input instance is untouched
    assert inst.users.server.tolist() == [0, 0]


# Bookkeeping.


def test_cloud_load_and_counters_mixed():
    users = [
        {"server": 0},  # to the cloud (rule 1)
        {"server": CLOUD},  # stays in the cloud (rule 1)
        {"server": 0, "ran": 1},  # fails (rule 2 with xi 0.5)
        {"server": 1, "ran": 1, "result_bits": 3e5},  # stays on ES 1
    ]
    out = simulator.apply(make_instance(users, xi_s=0.5), [CLOUD, CLOUD, 1, 1])
    check(out, final=[CLOUD, CLOUD, CLOUD, 1],
          outcome=[TO_CLOUD, STAYED_CLOUD, FAILED, ADMITTED],
          downtime=[0.89, 0.0, 0.901, 0.0], migrated=2, failed=1, rejected=0,
          cloud_bytes=3 * LOAD_BYTES)  # fmt: skip
    assert out.metrics() == {
        "migrated": 2,
        "migration_failed": 1,
        "mean_downtime_s": out.mean_downtime_s,
        "rejected": 0,
        "users_on_edge": 1,
    }


@pytest.mark.parametrize(
    "action", [[0], [0, 3], [0, -1], [0.5, 1], ["a", "b"], [[0, 1]], [True, False]]
)
def test_bad_actions_are_refused_naming_action(action):
    inst = make_instance([{}, {}])
    with pytest.raises(InputError, match="action"):
        simulator.apply(inst, action)


def test_integral_float_action_accepted():
    inst = make_instance([{}, {}])
    assert simulator.apply(inst, [0.0, 2.0]).final_server.tolist() == [0, CLOUD]


def test_deterministic_and_inputs_untouched():
    inst = generate_instance(Scenario(users=120, servers=4), seed=3)
    rng = np.random.default_rng(7)
    action = rng.integers(0, inst.n_servers + 1, size=inst.n_users)
    before = {k: v.copy() for k, v in vars(inst.users).items()}
    keep = action.copy()
    a, b = simulator.apply(inst, action), simulator.apply(inst, action)
    for field in ("final_server", "downtime_s", "outcome"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert a.metrics() == b.metrics() and a.cloud_load_bytes == b.cloud_load_bytes
    assert np.array_equal(action, keep)
    for k, v in vars(inst.users).items():
        assert np.array_equal(v, before[k])
    # every user is accounted for exactly once
    assert a.migrated == int((a.final_server != inst.users.server).sum())
    assert a.users_on_edge + int((a.final_server == inst.cloud).sum()) == inst.n_users
