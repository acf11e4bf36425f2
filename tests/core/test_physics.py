"""Each function of dtasm_opt.core.physics against values worked out by hand (docs/design.md §2).

The system is the tiny one of ``tiny.py``; the arithmetic is written out next to each value.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import CLOUD, make_apps, make_instance, make_servers

from dtasm_opt.core import physics

REL = 1e-12  # hand arithmetic in decimal vs float64 in the code's grouping


def approx(x):
    return pytest.approx(x, rel=REL, abs=0.0)


def test_comm_latency_eq9():
    servers = make_servers()
    ran = np.array([0, 0, 1, 1])
    dst = np.array([1, 0, 0, 1])
    vt = np.array([3.9e6, 3.9e6, 1.9e6, 1.9e6])
    vr = np.array([1e5, 1e5, 1e5, 1e5])
    got = physics.comm_latency_s(ran, dst, vt, vr, servers)
    # (3.9e6 + 1e5) / 2e7 + 2 * 1e-3 = 0.2 + 0.002; same RAN: 0; (1.9e6 + 1e5) / 2e7 + 0.002
    assert got.tolist() == [approx(0.202), 0.0, approx(0.102), 0.0]


def test_comm_latency_same_ran_is_zero_whatever_the_diagonal():
    # The diagonal of B may be 0 (ignored): 0 / 0 must not leak into the result.
    got = physics.comm_latency_s(
        np.array([1]), np.array([1]), np.array([5e6]), np.array([1e4]), make_servers()
    )
    assert got.tolist() == [0.0]


def test_required_capacity_eq12():
    kappa = np.array([100.0, 100.0, 100.0, 100.0])
    vt = np.array([4e6, 4e6, 4e6, 4e6])
    tau = np.array([0.9, 0.9, 0.9, 0.9])
    dc = np.array([0.1, 0.0, 0.9, 1.5])
    got = physics.required_capacity_hz(kappa, vt, tau, dc)
    # 100 * 4e6 / (0.9 - 0.1) = 4e8 / 0.8 = 5e8; same RAN: 4e8 / 0.9; dc >= tau: +inf
    assert got[0] == approx(5e8)
    assert got[1] == approx(4e8 / 0.9)
    assert got[2] == np.inf  # dc == tau exactly
    assert got[3] == np.inf  # dc > tau (the raw formula would be negative)


def test_suspend_eq4_and_zero_from_cloud():
    apps = make_apps()
    vm = np.array([8e6, 8e6, 8e6])
    app = np.array([0, 1, 0])
    src = np.array([0, 1, CLOUD])
    got = physics.suspend_s(vm, app, src, apps, CLOUD)
    # app 0: 8e6 * 0.5 / (0.25 * 2e8) = 4e6 / 5e7 = 0.08; app 1: 8e6 * 0.25 / (0.5 * 4e8) = 0.01
    assert got.tolist() == [approx(0.08), approx(0.01), 0.0]


def test_resume_eq5_and_zero_to_cloud():
    apps = make_apps()
    vm = np.array([8e6, 8e6, 8e6])
    app = np.array([0, 1, 1])
    dst = np.array([1, 0, CLOUD])
    got = physics.resume_s(vm, app, dst, apps, CLOUD)
    # app 0: 8e6 * 0.25 / 5e7 = 0.04; app 1: 8e6 * 0.5 / 2e8 = 0.02; to the cloud: 0
    assert got.tolist() == [approx(0.04), approx(0.02), 0.0]


def test_sync_eq6_between_edges_and_with_cloud():
    servers = make_servers()
    src = np.array([0, 1, 0, CLOUD, 1, CLOUD, 0, CLOUD])
    dst = np.array([1, 0, CLOUD, 0, CLOUD, 1, 0, CLOUD])
    vm = np.full(8, 8e6)
    got = physics.sync_s(vm, src, dst, servers)
    expected = [
        8e6 / 2e7 + 1e-3,  # 0 -> 1: 0.4 + 0.001
        0.401,  # symmetric
        8e6 / 1e7 + 0.01,  # 0 -> cloud: Bc[0], deltac[0]: 0.8 + 0.01
        0.81,  # cloud -> 0 uses the ES end's link too
        8e6 / 2e7 + 0.02,  # 1 -> cloud: 0.4 + 0.02
        0.42,  # cloud -> 1
        0.0,  # no move
        0.0,  # cloud to cloud
    ]
    assert got.tolist() == [approx(x) for x in expected]


def test_sf_activation():
    server = np.array([0, 1, CLOUD, 0])
    app = np.array([0, 1, 1, 1])
    got = physics.sf_active(server, app, 2, 2)
    # (ES 0, app 0) by user 0, (ES 1, app 1) by user 1, (ES 0, app 1) by user 3; the cloud
    # user activates nothing.
    assert got.tolist() == [[True, True], [False, True]]


def test_sf_activation_nobody_on_edge():
    got = physics.sf_active(np.array([CLOUD, CLOUD]), np.array([0, 1]), 2, 2)
    assert not got.any()


def test_sf_preparation():
    apps = make_apps()
    active = np.array([[True, True], [False, True]])
    app = np.array([0, 1, 1, 0])
    dst = np.array([1, 1, 0, 0])
    got = physics.sf_prepare_s(app, dst, active, apps)
    # app 0 is inactive on ES 1: dsf[0] = 0.1; everything else is active: 0
    assert got.tolist() == [0.1, 0.0, 0.0, 0.0]
    got = physics.sf_prepare_s(np.array([1]), np.array([0]), np.zeros((2, 2), bool), apps)
    assert got.tolist() == [0.2]


def test_migration_downtime_eq3():
    ds = np.array([0.08, 0.01])
    sync = np.array([0.401, 0.051])
    prep = np.array([0.1, 0.1])
    dr = np.array([0.04, 0.005])
    got = physics.migration_downtime_s(ds, sync, prep, dr)
    # (0.08 + max(0.401, 0.1)) + 0.04 = 0.521; (0.01 + max(0.051, 0.1)) + 0.005 = 0.115
    assert got.tolist() == [approx(0.521), approx(0.115)]


def test_failed_downtime_eq8():
    got = physics.failed_downtime_s(np.array([0.08]), np.array([0.401]), np.array([0.42]))
    assert got.tolist() == [approx(0.08 + 0.401 + 0.42)]  # 0.901


def test_target_physics_per_user():
    inst = make_instance(
        [
            {"ran": 0, "server": 0},  # migrate 0 -> 1, SF of app 0 inactive on ES 1
            {"ran": 1, "server": 1, "app": 1},  # stays on its RAN's ES
            {"ran": 0, "server": CLOUD},  # from the cloud to ES 0
            {"ran": 1, "server": 0, "latency_limit_s": 0.2},  # to the cloud; dc >= tau at 0
        ]
    )
    dst = np.array([1, 1, 0, CLOUD])
    p = physics.target_physics(inst, dst)
    # user 0: dc = 4e6 / 2e7 + 0.002 = 0.202; Prc = 100 * 3.9e6 / (1 - 0.202)
    assert p.comm_s[0] == approx(0.202)
    assert p.required_hz[0] == approx(3.9e8 / 0.798)
    # user 1 is on its RAN: dc = 0, Prc = 3.9e8 / 1.0
    assert p.comm_s[1] == 0.0
    assert p.required_hz[1] == approx(3.9e8)
    # suspend from the current server: 0.08, 0.01 (app 1), 0 (cloud), 0.08
    assert p.suspend_s.tolist() == [approx(0.08), approx(0.01), 0.0, approx(0.08)]
    # sync current -> target: 0.401, 0 (no move), cloud -> 0: 0.81, 0 -> cloud: 0.81
    assert p.sync_s.tolist() == [approx(0.401), 0.0, approx(0.81), approx(0.81)]
    # target -> cloud: 1 -> cloud 0.42, 0.42, 0 -> cloud 0.81, cloud -> cloud 0
    assert p.sync_to_cloud_s.tolist() == [approx(0.42), approx(0.42), approx(0.81), 0.0]
    # eq. (3): user 0: (0.08 + max(0.401, 0.1)) + 0.04 = 0.521
    # user 2 from the cloud (SF app 0 active on ES 0 through user 0): (0 + 0.81) + 0.04 = 0.85
    assert p.migration_s[0] == approx(0.521)
    assert p.migration_s[2] == approx(0.85)
    # eq. (8): user 0: 0.08 + 0.401 + 0.42 = 0.901; user 2: 0 + 0.81 + 0.81 = 1.62
    assert p.failed_s[0] == approx(0.901)
    assert p.failed_s[2] == approx(1.62)


def test_target_physics_full_matrix_and_latency_limit():
    inst = make_instance(
        [
            {"ran": 0, "server": 0, "latency_limit_s": 0.2},
            {"ran": 1, "server": CLOUD, "context_bits": 1e6},
        ]
    )
    p = physics.target_physics(inst, np.arange(2)[None, :])
    assert p.comm_s.shape == (2, 2)
    # user 0: dc to ES 1 is 0.202 >= tau = 0.2: +inf; on its own RAN: 3.9e8 / 0.2 = 1.95e9
    assert p.required_hz[0].tolist() == [approx(1.95e9), np.inf]
    # user 1 from the cloud, Vm = 1e6, app 0 (active on ES 0 through user 0, inactive on ES 1):
    # to ES 0: (0 + max(1e6/1e7 + 0.01, 0)) + 0.005 = 0.115;
    # to ES 1: (0 + max(1e6/2e7 + 0.02, 0.1)) + 0.005 = 0.105
    assert p.migration_s[1].tolist() == [approx(0.115), approx(0.105)]
    # same-RAN entries are 0 latency
    assert p.comm_s[0, 0] == 0.0 and p.comm_s[1, 1] == 0.0


def test_load_bits():
    inst = make_instance([{"task_bits": 3e6, "result_bits": 2e5}, {}])
    assert physics.load_bits(inst).tolist() == [3.2e6, 4e6]
