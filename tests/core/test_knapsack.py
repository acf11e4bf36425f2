"""The exact knapsack P3 (DESIGN section 3 rule 4) against brute force over all subsets.

Feasibility is DESIGN's: a set fits iff ``math.fsum`` of its weights is <= the capacity, exactly,
which is not what a left-to-right float sum says near the capacity.
"""

from __future__ import annotations

import bisect
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from dtasm_opt.core import knapsack
from dtasm_opt.core.knapsack import exact_scale, fits, max_load_subset

REL = 1e-12


def brute_force(weights: list[float], values: list[float], capacity: float) -> float:
    """The best value over all 2^n subsets that fit (fsum semantics)."""
    n, best = len(weights), 0.0
    for mask in range(1 << n):
        idx = [i for i in range(n) if mask >> i & 1]
        if math.fsum(weights[i] for i in idx) <= capacity:
            best = max(best, math.fsum(values[i] for i in idx))
    return best


def check_case(weights, values, capacity) -> np.ndarray:
    w, v = np.asarray(weights, dtype=float), np.asarray(values, dtype=float)
    chosen = max_load_subset(w, v, capacity)
    assert chosen.dtype == np.bool_ and chosen.shape == w.shape
    assert math.fsum(w[chosen].tolist()) <= capacity
    got = math.fsum(v[chosen].tolist())
    best = brute_force(w.tolist(), v.tolist(), capacity)
    assert got == pytest.approx(best, rel=REL, abs=0.0), (weights, values, capacity)
    return chosen


def _random_case(rng: np.random.Generator):
    n = int(rng.integers(0, 13))
    kind = rng.integers(0, 4)
    if kind == 0:  # the simulator's regime: Prc ~ 1e9 Hz, loads ~ 5e6 bits
        w = rng.uniform(1e8, 4e9, n)
        v = rng.uniform(4e6, 9e6, n)
    elif kind == 1:  # small integers: many ties and duplicates
        w = rng.integers(1, 5, n).astype(float)
        v = rng.integers(1, 4, n).astype(float)
    elif kind == 2:  # values proportional to weights: every subset ties on ratio
        w = rng.uniform(0.1, 1.0, n)
        v = w * 3.0
    else:  # duplicated items
        base_w, base_v = rng.uniform(1, 2, 3), rng.uniform(1, 2, 3)
        pick = rng.integers(0, 3, n)
        w, v = base_w[pick], base_v[pick]
    total = math.fsum(w.tolist())
    choice = rng.integers(0, 3)
    if choice == 0:
        cap = total * rng.uniform(0.2, 0.9)
    elif choice == 1 and n:  # exactly the sum of a random subset, or one ulp either side
        sub = w[rng.random(n) < 0.5].tolist()
        cap = math.nextafter(math.fsum(sub), [-math.inf, 0, math.inf][rng.integers(0, 3)])
        cap = max(cap, 0.0)
    else:
        cap = total * rng.uniform(0.9, 1.1)
    return w, v, cap


@pytest.mark.parametrize("seed", range(400))
def test_random_against_brute_force(seed):
    w, v, cap = _random_case(np.random.default_rng(seed))
    check_case(w, v, cap)


def test_empty_input():
    assert max_load_subset(np.array([]), np.array([]), 1.0).tolist() == []


def test_single_item_equal_to_capacity():
    assert check_case([3.9e8], [5.0], 3.9e8).tolist() == [True]
    assert check_case([3.9e8], [5.0], math.nextafter(3.9e8, 0)).tolist() == [False]


def test_everything_fits_everything_taken():
    assert check_case([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], 6.0).all()


def test_sum_exactly_capacity():
    # 5e9 + 4.9e9 + 1e8 = 1e10 exactly; 6e9 spoils any other combination
    chosen = check_case([6e9, 5e9, 4.9e9, 1e8], [6.0, 5.0, 4.9, 0.1], 1e10)
    assert chosen.tolist() == [False, True, True, True]


def test_tenths_fsum_not_left_to_right():
    # sum([0.1] * 10) left to right is 0.9999999999999999, but fsum is exactly 1.0
    w = [0.1] * 10
    assert sum(w) < 1.0 and math.fsum(w) == 1.0
    assert check_case(w, [1.0] * 10, 1.0).all()  # fits: fsum == capacity
    below = math.nextafter(1.0, 0.0)  # == the left-to-right sum, yet fsum is above it
    assert sum(w) <= below
    assert check_case(w, [1.0] * 10, below).sum() == 9


def test_large_and_small_magnitudes():
    # 1e16 + 1 + 1 rounds to 1e16 left to right, but fsum is 1e16 + 2 (representable), while
    # fsum(1e16, 1) = 1e16 + 1 rounds to 1e16 (ties to even): one small item fits, not two.
    w = [1e16, 1.0, 1.0]
    assert (1e16 + 1.0) + 1.0 == 1e16 and math.fsum(w) == 1e16 + 2
    assert math.fsum([1e16, 1.0]) == 1e16
    chosen = check_case(w, [10.0, 1.0, 1.0], 1e16)
    assert chosen[0] and chosen.sum() == 2
    chosen = check_case(w, [10.0, 1.0, 2.0], 1e16)
    assert chosen.tolist() == [True, False, True]
    assert check_case(w, [10.0, 1.0, 1.0], 1e16 + 2).all()


def test_zero_weights_are_always_affordable():
    chosen = check_case([0.0, 5.0, 0.0, 4.0], [1.0, 5.0, 2.0, 4.0], 6.0)
    assert chosen[[0, 2]].all()
    assert check_case([0.0, 0.0], [1.0, 1.0], 0.0).all()


def test_ties_equal_items():
    chosen = check_case([2.0] * 6, [3.0] * 6, 7.0)
    assert chosen.sum() == 3


def test_fits_is_fsum():
    assert fits(np.array([0.1] * 10), 1.0)
    assert not fits(np.array([0.1] * 10), math.nextafter(1.0, 0.0))


@pytest.mark.parametrize("seed", range(40))
def test_exact_scale_agrees_with_fsum(seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(1, 30))
    mags = 10.0 ** rng.uniform(-6, 12, n) if seed % 2 else rng.uniform(1e8, 5e9, n)
    weights = mags.tolist()
    for _ in range(30):
        sub = np.flatnonzero(rng.random(n) < 0.5).tolist()
        exact = math.fsum(weights[i] for i in sub)
        for cap in (exact, math.nextafter(exact, math.inf), math.nextafter(exact, 0.0)):
            ints, scale, limit = exact_scale(weights, cap)
            assert (sum(ints[i] for i in sub) <= limit) == (
                math.fsum(weights[i] for i in sub) <= cap
            )
            # the integers are the weights, exactly
            assert all(Fraction(ints[i], scale) == Fraction(weights[i]) for i in sub)


@pytest.mark.parametrize("capacity", [1.0, 3.9e8, 1e10, 0.1, 7.5e-300])
def test_exact_scale_limit_is_the_largest_fitting_integer(capacity):
    _, scale, limit = exact_scale([0.5, 0.25], capacity)
    # limit / scale (correctly rounded, like fsum) fits, limit + 1 does not
    assert limit / scale <= capacity
    assert (limit + 1) / scale > capacity


def test_all_subsets_small_exhaustive_ties():
    # every 0/1/2-weight, 1/2-value combination of 4 items against every capacity 0..8
    for w in itertools.product([0.0, 1.0, 2.0], repeat=4):
        for v in itertools.product([1.0, 2.0], repeat=2):
            for cap in range(0, 9, 2):
                check_case(list(w), [v[0], v[1], v[0], v[1]], float(cap))


# The reduction path (core incumbent, variable fixing) only runs past 2 * CORE_HALF + 1
# candidates, and the dominance programme only past NODE_BUDGET search nodes: check both by
# brute force with a tiny core and budget, then against independent exact methods on larger
# cases.


@pytest.mark.parametrize("seed", range(200))
def test_reduction_and_dominance_paths_against_brute_force(seed, monkeypatch):
    monkeypatch.setattr(knapsack, "CORE_HALF", int(seed % 3))
    monkeypatch.setattr(knapsack, "NODE_BUDGET", [0, 3, 10**9][seed % 4 % 3])
    w, v, cap = _random_case(np.random.default_rng(5000 + seed))
    check_case(w, v, cap)


def meet_in_the_middle(weights: list[float], values: list[float], capacity: float) -> float:
    """Exact optimum for n <= ~26: all subsets of each half, exact integer weights."""
    ints, _, limit = exact_scale(weights, capacity)
    half = len(weights) // 2

    def subsets(lo: int, hi: int) -> list[tuple[int, float]]:
        out = [(0, 0.0)]
        for i in range(lo, hi):
            out += [(a + ints[i], b + values[i]) for a, b in out]
        return out

    right = sorted(subsets(half, len(weights)))
    keys = [a for a, _ in right]
    best_right = list(itertools.accumulate((b for _, b in right), max))
    best = 0.0
    for a, b in subsets(0, half):
        if a <= limit:
            k = bisect.bisect_right(keys, limit - a) - 1
            best = max(best, b + best_right[k])
    return best


@pytest.mark.parametrize("seed", range(30))
def test_medium_cases_against_meet_in_the_middle(seed):
    rng = np.random.default_rng(7000 + seed)
    n = int(rng.integers(18, 25))
    w = rng.uniform(1e8, 4e9, n) if seed % 2 else rng.integers(1, 9, n).astype(float)
    v = rng.uniform(4e6, 9e6, n) if seed % 3 else w * rng.uniform(0.999, 1.001, n)
    cap = math.fsum(w.tolist()) * rng.uniform(0.2, 0.8)
    chosen = max_load_subset(w, v, cap)
    assert math.fsum(w[chosen].tolist()) <= cap
    best = meet_in_the_middle(w.tolist(), v.tolist(), cap)
    assert math.fsum(v[chosen].tolist()) == pytest.approx(best, rel=REL, abs=0.0)


def plain_branch_and_bound(weights: list[float], values: list[float], capacity: float) -> float:
    """A second exact method: DFS in ratio order with the Dantzig bound, nothing else."""
    ints, scale, limit = exact_scale(weights, capacity)
    order = sorted(range(len(weights)), key=lambda i: -values[i] / weights[i])
    w = [ints[i] for i in order]
    v = [values[i] for i in order]
    best = 0.0

    def bound(i: int, room: int, val: float) -> float:
        for j in range(i, len(w)):
            if w[j] > room:
                return val + v[j] * room / w[j]
            room, val = room - w[j], val + v[j]
        return val

    def dfs(i: int, room: int, val: float) -> None:
        nonlocal best
        best = max(best, val)
        if i == len(w) or bound(i, room, val) <= best * (1 + 1e-14):
            return
        if w[i] <= room:
            dfs(i + 1, room - w[i], val + v[i])
        dfs(i + 1, room, val)

    dfs(0, limit, 0.0)
    return best


@pytest.mark.parametrize("budget", [knapsack.NODE_BUDGET, 0])
@pytest.mark.parametrize("seed", range(12))
def test_large_overloaded_es_against_plain_branch_and_bound(seed, budget, monkeypatch):
    monkeypatch.setattr(knapsack, "NODE_BUDGET", budget)
    # the simulator's regime at (5000, 32): 60-250 candidates, 2-6 times the capacity
    rng = np.random.default_rng(9000 + seed)
    n = int(rng.integers(60, 250))
    vt = rng.uniform(512 * 8192, 1024 * 8192, n)
    w = rng.uniform(228, 538, n) * vt / rng.uniform(0.3, 1.0, n)
    v = vt + rng.uniform(10 * 8192, 20 * 8192, n)
    cap = math.fsum(w.tolist()) / rng.uniform(2, 6)
    chosen = max_load_subset(w, v, cap)
    assert math.fsum(w[chosen].tolist()) <= cap
    best = plain_branch_and_bound(w.tolist(), v.tolist(), cap)
    assert math.fsum(v[chosen].tolist()) == pytest.approx(best, rel=REL, abs=0.0)
