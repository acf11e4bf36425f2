"""The Table II generator (docs/design.md §4): ranges in SI units, seeding, mobility."""

from __future__ import annotations

import numpy as np
import pytest

from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.errors import InputError

KB, MB = 1024 * 8, 1024 * 1024 * 8  # bits in a KByte and an MByte

# Table II written out again, independently of the generator's table, in SI units.
RANGES = {
    "capacity_hz": (60e9, 100e9),
    "bandwidth_bps": (20e6, 80e6),
    "delay_s": (1e-3, 3e-3),
    "cloud_bandwidth_bps": (50e6, 120e6),
    "cloud_delay_s": (10e-3, 20e-3),
    "task_bits": (512 * KB, 1024 * KB),
    "result_bits": (10 * KB, 20 * KB),
    "context_bits": (1 * MB, 8 * MB),
    "sf_prepare_s": (0.1, 0.2),
    "latency_limit_s": (0.8, 1.0),
    "cycles_per_bit": (228.0, 538.0),
    "sf_capacity_hz": (200e6, 300e6),
    "checkpoint_share": (0.2, 0.3),
    "suspend_cycles_per_bit": (350 / 1000, 450 / 1000),
    "resume_cycles_per_bit": (350 / 1000, 450 / 1000),
}


@pytest.fixture(scope="module")
def stream():
    return generate_stream(Scenario(users=300, servers=6), seed=21, steps=30)


def _in_range(values: np.ndarray, key: str) -> None:
    low, high = RANGES[key]
    assert values.size > 0
    assert values.min() >= low and values.max() <= high, key
    # spread over the range, not a constant or a corner of it (only checked on many draws)
    assert values.max() > values.min(), key
    if values.size >= 100:
        assert values.max() - values.min() > 0.9 * (high - low), key


def test_table_ii_ranges(stream):
    s, a = stream.servers, stream.apps
    off = ~np.eye(stream.n_servers, dtype=bool)
    _in_range(s.capacity_hz, "capacity_hz")
    _in_range(s.bandwidth_bps[off], "bandwidth_bps")
    _in_range(s.delay_s[off], "delay_s")
    _in_range(s.cloud_bandwidth_bps, "cloud_bandwidth_bps")
    _in_range(s.cloud_delay_s, "cloud_delay_s")
    for key in (
        "sf_capacity_hz",
        "checkpoint_share",
        "suspend_cycles_per_bit",
        "resume_cycles_per_bit",
        "sf_prepare_s",
    ):
        _in_range(getattr(a, key), key)
    _in_range(stream.latency_limit_s, "latency_limit_s")
    for key in ("task_bits", "result_bits", "context_bits", "cycles_per_bit"):
        _in_range(getattr(stream, key), key)


def test_shapes_and_defaults():
    st = generate_stream(Scenario(), seed=0, steps=3)
    assert (st.n_users, st.n_servers, st.apps.n_apps, st.n_steps) == (200, 8, 10, 3)
    assert st.xi_s == 1.2
    assert st.app.min() >= 0 and st.app.max() <= 9
    assert np.array_equal(st.initial_server, st.ran[0])
    assert len(st.meta["ran_popularity"]) == 8


def test_links_symmetric_with_zero_diagonal(stream):
    for m in (stream.servers.bandwidth_bps, stream.servers.delay_s):
        assert np.array_equal(m, m.T)
        assert np.all(np.diag(m) == 0.0)


def _same_arrays(a, b, names):
    for name in names:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


SERVER_FIELDS = ("capacity_hz", "bandwidth_bps", "delay_s", "cloud_bandwidth_bps", "cloud_delay_s")
APP_FIELDS = (
    "sf_capacity_hz",
    "checkpoint_share",
    "suspend_cycles_per_bit",
    "resume_cycles_per_bit",
    "sf_prepare_s",
)
STEP_FIELDS = ("ran", "task_bits", "result_bits", "context_bits", "cycles_per_bit")


def test_same_seed_same_arrays():
    sc = Scenario(users=50, servers=4)
    a, b = generate_stream(sc, seed=4, steps=5), generate_stream(sc, seed=4, steps=5)
    _same_arrays(a.servers, b.servers, SERVER_FIELDS)
    _same_arrays(a.apps, b.apps, APP_FIELDS)
    _same_arrays(a, b, ("app", "latency_limit_s", "initial_server", *STEP_FIELDS))
    assert a.meta == b.meta
    c = generate_stream(sc, seed=5, steps=5)
    assert not np.array_equal(a.task_bits, c.task_bits)
    assert not np.array_equal(a.servers.capacity_hz, c.servers.capacity_hz)


def test_system_independent_of_users_and_steps():
    a = generate_stream(Scenario(users=10, servers=5), seed=8, steps=1)
    b = generate_stream(Scenario(users=400, servers=5), seed=8, steps=25)
    _same_arrays(a.servers, b.servers, SERVER_FIELDS)
    _same_arrays(a.apps, b.apps, APP_FIELDS)
    assert a.meta["ran_popularity"] == b.meta["ran_popularity"]


def test_users_static_data_independent_of_steps():
    a = generate_stream(Scenario(users=30, servers=3), seed=2, steps=2)
    b = generate_stream(Scenario(users=30, servers=3), seed=2, steps=9)
    _same_arrays(a, b, ("app", "latency_limit_s", "initial_server"))


@pytest.mark.parametrize("mobility", ["iid", "markov"])
def test_prefix_stability(mobility):
    sc = Scenario(users=40, servers=4, mobility=mobility)
    short, long = generate_stream(sc, seed=6, steps=20), generate_stream(sc, seed=6, steps=50)
    for name in STEP_FIELDS:
        assert np.array_equal(getattr(long, name)[:20], getattr(short, name)), name
    _same_arrays(long.head(20), short, STEP_FIELDS)


def test_markov_stay_prob_one_keeps_rans():
    st = generate_stream(Scenario(users=80, servers=5, mobility="markov", stay_prob=1.0), 3, 15)
    assert np.all(st.ran == st.ran[0])
    # the volumes still change every step
    assert not np.array_equal(st.task_bits[0], st.task_bits[1])


def test_markov_stay_prob_zero_redraws_like_iid():
    kw = {"users": 80, "servers": 5}
    markov = generate_stream(Scenario(**kw, mobility="markov", stay_prob=0.0), 3, 15)
    iid = generate_stream(Scenario(**kw, mobility="iid"), 3, 15)
    assert np.array_equal(markov.ran, iid.ran)
    assert not np.all(markov.ran == markov.ran[0])


def test_markov_stay_fraction():
    # P(same RAN next step) = p + (1 - p) * sum(w^2)
    p = 0.8
    st = generate_stream(Scenario(users=200, servers=5, mobility="markov", stay_prob=p), 1, 60)
    w = np.array(st.meta["ran_popularity"])
    same = np.mean(st.ran[1:] == st.ran[:-1])
    assert same == pytest.approx(p + (1 - p) * np.sum(w**2), abs=0.01)


def test_gamma_popularity_matches_ran_frequencies():
    st = generate_stream(Scenario(users=200, servers=6, gamma_shape=2.0), seed=13, steps=200)
    w = np.array(st.meta["ran_popularity"])
    assert w.sum() == pytest.approx(1.0) and np.all(w > 0)
    freq = np.bincount(st.ran.ravel(), minlength=6) / st.ran.size
    # 40 000 draws: the standard error of each frequency is below 0.0025
    assert np.abs(freq - w).max() < 0.015
    assert w.max() / w.min() > 1.5  # unbalanced, as the gamma popularity intends


def test_generate_instance_is_step_zero():
    sc = Scenario(users=25, servers=3)
    inst, st = generate_instance(sc, seed=1), generate_stream(sc, seed=1, steps=4)
    for name in STEP_FIELDS:
        assert np.array_equal(getattr(inst.users, name), getattr(st, name)[0])
    assert np.array_equal(inst.users.server, st.ran[0])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"users": 0}, "users"),
        ({"servers": 0}, "servers"),
        ({"apps": 0}, "apps"),
        ({"xi_s": -1.0}, "xi"),
        ({"mobility": "levy"}, "mobility"),
        ({"stay_prob": 1.5}, "stay-prob"),
        ({"gamma_shape": 0.0}, "gamma-shape"),
    ],
)
def test_bad_scenario_names_the_field(kwargs, field):
    with pytest.raises(InputError, match=field):
        Scenario(**kwargs)


def test_bad_steps():
    with pytest.raises(InputError, match="steps"):
        generate_stream(Scenario(users=2, servers=2), seed=0, steps=0)
