"""The exact knapsack P3 (docs/design.md §3 rule 4) against brute force over all subsets.

Feasibility is docs/design.md §2's: a set fits iff ``math.fsum`` of its weights is <= the
capacity, exactly, which is not what a left-to-right float sum says near the capacity.
"""

from __future__ import annotations

import bisect
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# The simulator's regime: Prc ~ 1e9 Hz, loads ~ 5e6 bits.
SIM_WEIGHT = st.floats(1e8, 4e9)
SIM_VALUE = st.floats(4e6, 9e6)


@st.composite
def knapsack_cases(draw, max_items: int = 12) -> tuple[np.ndarray, np.ndarray, float]:
    """(weights, values, capacity) with up to ``max_items`` items of one of four kinds, and a
    capacity below the total, near it, or exactly a subset's fsum or one ulp either side."""
    n = draw(st.integers(0, max_items))

    def items(elements, **kw):
        return st.lists(elements, min_size=n, max_size=n, **kw)

    kind = draw(st.sampled_from(["simulator", "small integers", "equal ratios", "duplicates"]))
    if kind == "simulator":  # distinct weights, as the simulator's Prc almost surely are
        w, v = draw(items(SIM_WEIGHT, unique=True)), draw(items(SIM_VALUE))
    elif kind == "small integers":  # many ties and duplicates
        w, v = draw(items(st.integers(1, 4))), draw(items(st.integers(1, 3)))
    elif kind == "equal ratios":  # values proportional to weights: every subset ties on ratio
        w = draw(items(st.floats(0.1, 1.0)))
        v = [x * 3.0 for x in w]
    else:  # duplicated items: each is one of three (weight, value) pairs
        pairs = draw(st.lists(st.tuples(st.floats(1, 2), st.floats(1, 2)), min_size=3, max_size=3))
        picks = draw(items(st.integers(0, 2)))
        w, v = [pairs[i][0] for i in picks], [pairs[i][1] for i in picks]
    weights, values = np.array(w, dtype=float), np.array(v, dtype=float)
    total = math.fsum(weights.tolist())
    where = draw(st.sampled_from(["below the total", "a subset's sum", "near the total"]))
    if where == "below the total":
        cap = total * draw(st.floats(0.2, 0.9))
    elif where == "a subset's sum" and n:
        mask = np.array(draw(items(st.booleans())), dtype=bool)
        cap = math.fsum(weights[mask].tolist())
        ulps = draw(st.sampled_from([0, -1, 1]))  # exactly, one ulp below, one ulp above
        if ulps:
            cap = max(math.nextafter(cap, ulps * math.inf), 0.0)
    else:
        cap = total * draw(st.floats(0.9, 1.1))
    return weights, values, cap


@settings(max_examples=400)
@given(knapsack_cases())
def test_max_load_subset_matches_brute_force(case):
    """Optimal and feasible on small cases of every kind; reference: brute force over all
    2^n subsets with fsum feasibility."""
    check_case(*case)


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


SPREAD_WEIGHT = st.floats(-6, 12).map(lambda e: 10.0**e)  # 1e-6 to 1e12, drawn by exponent


@st.composite
def weights_and_subsets(draw) -> tuple[list[float], list[list[int]]]:
    """1-29 weights, all at the simulator's magnitudes or all spread over 1e-6..1e12, and up
    to 30 subsets of them (each item in with probability about 1/2)."""
    element = draw(st.sampled_from([st.floats(1e8, 5e9), SPREAD_WEIGHT]))
    weights = draw(st.lists(element, min_size=1, max_size=29))
    mask = st.lists(st.booleans(), min_size=len(weights), max_size=len(weights))
    masks = draw(st.lists(mask, min_size=1, max_size=30))
    return weights, [[i for i, m in enumerate(ms) if m] for ms in masks]


@settings(max_examples=100)
@given(weights_and_subsets())
def test_exact_scale_agrees_with_fsum(case):
    """A subset's integer sum is within the limit iff its fsum fits, for capacities at the
    subset's fsum and one ulp either side; reference: math.fsum, and Fraction for exactness."""
    weights, subsets = case
    for sub in subsets:
        exact = math.fsum(weights[i] for i in sub)
        for cap in (exact, math.nextafter(exact, math.inf), math.nextafter(exact, 0.0)):
            ints, scale, limit = exact_scale(weights, cap)
            assert (sum(ints[i] for i in sub) <= limit) == (
                math.fsum(weights[i] for i in sub) <= cap
            )
            # the integers are the weights, exactly
            assert all(
                Fraction(i, scale) == Fraction(x) for i, x in zip(ints, weights, strict=True)
            )


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


@settings(max_examples=200)
@given(
    case=knapsack_cases(),
    core_half=st.integers(0, 2),
    node_budget=st.sampled_from([0, 3, 10**9]),
)
def test_reduction_and_dominance_paths_against_brute_force(case, core_half, node_budget):
    """With a core of 0-2 items either side and a node budget of 0, 3 or unlimited, small
    cases take the reduction and dominance paths; reference: brute force over all subsets."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(knapsack, "CORE_HALF", core_half)
        mp.setattr(knapsack, "NODE_BUDGET", node_budget)
        check_case(*case)


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


@st.composite
def medium_cases(draw) -> tuple[np.ndarray, np.ndarray, float]:
    """18-24 items: simulator-regime or small-integer weights; values either the simulator's
    loads or within 0.1 % of the weights (near ties on ratio); 20-80 % of the total fits."""
    n = draw(st.integers(18, 24))
    floats = draw(st.booleans())
    w = draw(st.lists(SIM_WEIGHT if floats else st.integers(1, 8), min_size=n, max_size=n))
    weights = np.array(w, dtype=float)
    if draw(st.booleans()):
        values = np.array(draw(st.lists(SIM_VALUE, min_size=n, max_size=n)))
    else:
        factors = draw(st.lists(st.floats(0.999, 1.001), min_size=n, max_size=n))
        values = weights * np.array(factors)
    cap = math.fsum(weights.tolist()) * draw(st.floats(0.2, 0.8))
    return weights, values, cap


@settings(max_examples=30)
@given(medium_cases())
def test_medium_cases_against_meet_in_the_middle(case):
    """Past the brute force's reach, the reduction path is checked against an independent
    exact method: meet in the middle over exact integer weights."""
    w, v, cap = case
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
