"""CP-SAT: the integer scaling, the knapsack P3 and the whole step (`cpsat`).

Independent references: the simulator's exact knapsack (dtasm_opt.knapsack.max_load_subset)
and brute force over every action through dtasm_opt.simulator.apply on tiny instances.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtasm_opt.core import simulator
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.knapsack import max_load_subset
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.errors import InputError
from dtasm_opt.models.cpsat_model import (
    CONSERVATIVE,
    HZ_PER_UNIT,
    RELAXED,
    scale_capacity,
    scale_weights,
)
from dtasm_opt.solvers.exact.cpsat import CpsatOptions, cpsat_knapsack, make_cpsat, solve_step
from dtasm_opt.solvers.registry import make_method

FAST = CpsatOptions(time_limit_s=10.0, threads=1, seed=0)
BASELINES = ("womig-stable", "womig-dynamic", "random", "nearest", "danearest")
REL = 1e-9  # docs/design.md §3: implementing an action reproduces its cloud load to 1e-9


def _boundary_weights(rng: np.random.Generator, n: int) -> np.ndarray:
    """Table II magnitudes plus values on and next to multiples of the kHz unit."""
    w = rng.uniform(1e9, 1e10, n)
    k = rng.integers(10**6, 10**7, n).astype(float) * HZ_PER_UNIT
    edge = np.concatenate([k, np.nextafter(k, 0), np.nextafter(k, np.inf)])
    return np.concatenate([w, edge])


def test_scaled_weights_round_in_the_stated_direction():
    w = _boundary_weights(np.random.default_rng(1), 300)
    q = Fraction(HZ_PER_UNIT)
    for up, down, x in zip(
        scale_weights(w, CONSERVATIVE), scale_weights(w, RELAXED), w.tolist(), strict=True
    ):
        exact = Fraction(x) / q
        assert up == math.ceil(exact) and down == math.floor(exact)
    cap = _boundary_weights(np.random.default_rng(2), 100) * 10
    cons, relx = scale_capacity(cap, CONSERVATIVE), scale_capacity(cap, RELAXED)
    assert all(c == math.floor(Fraction(p) / q) for c, p in zip(cons, cap.tolist(), strict=True))
    assert np.array_equal(relx, cons + 1)


def test_conservative_sets_fit_and_real_sets_fit_the_relaxation():
    """Weights up / capacity down never admits a set that overflows (fsum); every set that
    fits for real fits the relaxed rounding. Capacities sit exactly at the set's fsum and a
    few ulps around it, where a wrong rounding would show."""
    rng = np.random.default_rng(7)
    checked = both_ways = 0
    for _ in range(2000):
        w = rng.uniform(1e9, 1e10, rng.integers(2, 30))
        if rng.random() < 0.5:  # weights on the kHz grid: the rounding is exact there
            w = np.round(w / HZ_PER_UNIT) * HZ_PER_UNIT
        total = math.fsum(w.tolist())
        cap = total
        for _ in range(rng.integers(-3, 4)):
            cap = np.nextafter(cap, np.inf if cap <= total else 0)
        cap += float(rng.choice([0.0, 0.0, -400.0, 300.0, 1000.0]))
        fits = total <= cap
        cons_fit = scale_weights(w, CONSERVATIVE).sum() <= scale_capacity([cap], CONSERVATIVE)[0]
        relx_fit = scale_weights(w, RELAXED).sum() <= scale_capacity([cap], RELAXED)[0]
        assert not cons_fit or fits
        assert not fits or relx_fit
        checked += 1
        both_ways += cons_fit and fits
    assert both_ways > 100 and checked == 2000  # the conservative side is not vacuous


@st.composite
def table2_knapsacks(draw) -> tuple[np.ndarray, np.ndarray, float]:
    """5-40 candidates at Table II magnitudes, of which about 1/1.7 of the weight fits."""
    n = draw(st.integers(5, 40))
    w = draw(st.lists(st.floats(1e9, 1e10), min_size=n, max_size=n))  # Prc (Hz)
    load = st.floats((512 + 10) * 8192, (1024 + 20) * 8192)  # Vt + Vr (bits)
    v = draw(st.lists(load, min_size=n, max_size=n))
    weights = np.array(w)
    return weights, np.array(v), float(weights.sum() / 1.7)


@settings(max_examples=200)
@given(table2_knapsacks())
def test_knapsack_matches_the_exact_one(case):
    """The NOTES trap (OPTIMAL 2 % below the optimum at Hz coefficients) must not appear at
    kHz scaling: CP-SAT's set fits for the real numbers and is optimal to 1e-12. Reference:
    the simulator's exact knapsack, max_load_subset."""
    w, v, cap = case
    mask = cpsat_knapsack(w, v, cap, time_limit_s=10.0, seed=0, workers=1)
    exact = max_load_subset(w, v, cap)
    assert math.fsum(w[mask].tolist()) <= cap  # never infeasible for the real numbers
    got, best = float(v[mask].sum()), float(v[exact].sum())
    # The rounding could in principle cost a set whose slack is under n kHz, and loads are
    # rounded up by < 1 bit each; no such loss is accepted here.
    assert got == pytest.approx(best, rel=1e-12, abs=0.0)


def test_knapsack_takes_everything_that_fits_and_refuses_bad_input():
    w = np.array([1e9, 2e9, 3e9])
    assert cpsat_knapsack(w, np.ones(3) * 8e6, 6e9).all()  # fsum(w) == capacity: all fit
    assert cpsat_knapsack(w, np.array([1e6, 2e6, 5e6]), 5e9).tolist() == [False, True, True]
    with pytest.raises(InputError, match="required_hz"):
        cpsat_knapsack(np.array([1e9, np.nan]), np.ones(2), 5e8)
    with pytest.raises(InputError, match="values"):
        cpsat_knapsack(w, np.ones(2), 5e8)


def _tiny(seed: int, users: int, servers: int, shrink: float) -> Instance:
    """A Table II instance with random current servers (cloud included) and capacities
    scaled by ``shrink`` (< 1: overloaded, the knapsack decides)."""
    rng = np.random.default_rng([seed, users, servers])
    stream = generate_stream(Scenario(users=users, servers=servers, apps=3), seed)
    inst = stream.instance(0, server=rng.integers(0, servers + 1, size=users))
    cap = inst.servers.capacity_hz * shrink
    return dataclasses.replace(inst, servers=dataclasses.replace(inst.servers, capacity_hz=cap))


def _brute_force(inst: Instance) -> tuple[float, int]:
    """Least cloud load over all (H+1)^U actions, and the fewest migrations at that load."""
    outs = [
        simulator.apply(inst, np.array(a))
        for a in itertools.product(range(inst.cloud + 1), repeat=inst.n_users)
    ]
    best = min(o.cloud_load_bytes for o in outs)
    tol = REL * max(best, 1.0)
    return best, min(o.migrated for o in outs if o.cloud_load_bytes <= best + tol)


# (users, servers): (H+1)^U <= 1024 actions, so brute force stays fast.
SIZES = [(3, 1), (4, 1), (5, 1), (3, 2), (4, 2), (5, 2), (3, 3), (4, 3), (5, 3)]
SHRINK = [1.0, 0.1, 0.06, 0.04]


@settings(max_examples=200)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from(SIZES), shrink=st.sampled_from(SHRINK))
def test_step_equals_brute_force_on_tiny_instances(seed, size, shrink):
    """The simulator's value of CP-SAT's action is the optimum, with the fewest migrations;
    every assigned user is admitted; the bound is valid. Reference: brute force over all
    (H+1)^U actions through simulator.apply."""
    inst = _tiny(seed, *size, shrink)
    decision = solve_step(inst, FAST)
    out = simulator.apply(inst, decision.action)
    best, fewest = _brute_force(inst)
    assert out.cloud_load_bytes == pytest.approx(best, rel=REL, abs=1e-6)
    assert out.migrated == fewest
    assigned = decision.action != inst.cloud
    assert np.all(out.outcome[assigned] == simulator.ADMITTED)  # scaled => feasible
    assert decision.status == "optimal", decision.info
    assert decision.bound_bytes is not None and decision.bound_bytes <= best


def test_tiny_instances_exercise_the_relaxed_bound():
    """The family drawn above is not trivial: on many overloaded instances not every user
    can be served and the bound comes from the relaxed model."""
    decisions = [
        solve_step(_tiny(seed, *SIZES[seed % len(SIZES)], SHRINK[seed % len(SHRINK)]), FAST)
        for seed in range(50)
    ]
    assert sum(d.info["bound_by"] == "relaxed model" for d in decisions) >= 10


def test_six_users_three_servers_against_all_4096_actions():
    for seed in (11, 12):
        inst = _tiny(seed, 6, 3, 0.05)
        decision = solve_step(inst, FAST)
        out = simulator.apply(inst, decision.action)
        best, fewest = _brute_force(inst)
        assert out.cloud_load_bytes == pytest.approx(best, rel=REL, abs=1e-6)
        assert out.migrated == fewest
        assert decision.bound_bytes <= best


# (seed, users, servers, shrink): solved to proven optimality in under 2 s each; the last two
# are overloaded (the relaxed bound decides), in the first three every user fits.
MEDIUM = [(1, 30, 3, 1.0), (1, 40, 4, 0.4), (2, 40, 4, 0.4), (0, 30, 3, 0.25), (1, 30, 3, 0.25)]


@pytest.mark.parametrize(("seed", "users", "servers", "shrink"), MEDIUM)
def test_not_worse_than_any_baseline(seed, users, servers, shrink):
    inst = _tiny(seed, users, servers, shrink)
    sol = judge(make_cpsat("cpsat", MethodSettings(seed=0, time_limit_s=10.0)), inst)
    assert sol.status == "optimal"
    assert sol.metrics["rejected"] == 0  # every assigned user fits in the simulator
    assert sol.bound_bytes is not None and sol.bound_bytes <= sol.cloud_load_bytes
    assert sol.gap < 1e-5  # only the load rounding (< 1 bit per served user) separates them
    for name in BASELINES:
        base = judge(make_method(name, MethodSettings(seed=seed)), inst)
        assert sol.cloud_load_bytes <= base.cloud_load_bytes * (1 + REL) + 1e-6, name


def test_same_seed_one_worker_same_action():
    inst = _tiny(0, 30, 3, 0.25)
    opts = CpsatOptions(time_limit_s=20.0, threads=1, seed=9)
    first, second = solve_step(inst, opts), solve_step(inst, opts)
    assert first.status == second.status == "optimal"
    assert np.array_equal(first.action, second.action)
    assert first.info["migrations"] == second.info["migrations"]


def test_registry_settings_and_bad_options():
    method = make_method("cpsat", MethodSettings(seed=4, time_limit_s=3.0, threads=1, gap=0.0))
    assert method.name == "cpsat"
    assert (method.options.seed, method.options.time_limit_s) == (4, 3.0)
    sol = judge(method, generate_instance(Scenario(users=20, servers=3), seed=1))
    assert sol.status == "optimal" and sol.gap == 0.0
    with pytest.raises(InputError, match="time_limit_s"):
        CpsatOptions(time_limit_s=0.0)
    with pytest.raises(InputError, match="threads"):
        CpsatOptions(threads=0)
    with pytest.raises(InputError, match="gap"):
        CpsatOptions(gap=-1.0)


def test_gap_option_stops_early_with_a_valid_bound():
    inst = _tiny(0, 30, 3, 0.25)
    exact = solve_step(inst, CpsatOptions(time_limit_s=10.0))
    loose = solve_step(inst, CpsatOptions(time_limit_s=10.0, gap=0.5))
    for d in (exact, loose):
        load = simulator.apply(inst, d.action).cloud_load_bytes
        assert d.bound_bytes is not None and d.bound_bytes <= load
    assert exact.status == "optimal"
    assert loose.status in ("optimal", "feasible")  # a gap stop is not a time limit
    loose_load = simulator.apply(inst, loose.action).cloud_load_bytes
    assert (loose_load - loose.bound_bytes) / max(loose_load, 1.0) <= 0.5 + 1e-9  # what was asked


def test_no_solution_at_the_limit_claims_no_bound():
    # Regression: at a limit too short for any solution, CP-SAT's best_objective_bound read 0
    # and passed for a proof that sending everyone to the cloud is optimal.
    inst = generate_instance(Scenario(users=400, servers=8), seed=1)
    dec = solve_step(inst, CpsatOptions(time_limit_s=1e-4, second_stage=False))
    load = simulator.apply(inst, dec.action).cloud_load_bytes
    assert dec.status != "optimal"
    assert dec.bound_bytes is None or dec.bound_bytes <= load
