"""``verify``'s own knapsacks (:mod:`dtasm_opt.core.certificate`) against brute force: the DP
on coarse grids, the branch and bound on grids too fine for a table, and the coarse DP it
falls back on (a value at least the optimum, so a bound recomputed from it stays valid)."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dtasm_opt.core import certificate
from dtasm_opt.core.certificate import _branch_and_bound, _most


def _brute_force(units: list[int], values: list[float], cells: int) -> float:
    best = 0.0
    for r in range(len(units) + 1):
        for subset in itertools.combinations(range(len(units)), r):
            if sum(units[i] for i in subset) <= cells:
                best = max(best, math.fsum(values[i] for i in subset))
    return best


@settings(max_examples=200)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 10))
def test_branch_and_bound_equals_brute_force(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    units = rng.integers(0, 40, size=n).tolist()
    values = rng.normal(1.0, 1.0, size=n).tolist()
    cells = int(rng.integers(0, 80))
    best = _branch_and_bound(units, values, cells, 10**6)
    assert best is not None
    assert math.isclose(best, _brute_force(units, values, cells), rel_tol=1e-12, abs_tol=1e-12)
    assert _branch_and_bound(units, values, cells, 0) is None  # the limit counts nodes


@settings(max_examples=60)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 9), nodes=st.sampled_from([1, 10**6]))
def test_a_grid_too_fine_for_the_dp_is_searched(seed: int, n: int, nodes: int) -> None:
    """Weights of 1-3 GHz on the 1 Hz grid: exact by branch and bound; with the search cut
    short, the DP on the coarsened grid answers, never below the optimum."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(1e9, 3e9, size=n).tolist()
    values = rng.normal(1.0, 1.0, size=n).tolist()
    capacity = float(rng.uniform(1e9, 8e9))
    exact = _brute_force([math.floor(w) for w in weights], values, math.floor(capacity))
    old = certificate.CHECK_NODES, certificate.FIRST_NODES
    certificate.CHECK_NODES = certificate.FIRST_NODES = nodes
    try:
        units = [certificate._units(w, 1.0) for w in weights]
        value = _most(units, values, certificate._capacity_units(capacity, 1.0))
    finally:
        certificate.CHECK_NODES, certificate.FIRST_NODES = old
    if nodes > 1:
        assert math.isclose(value, exact, rel_tol=1e-12, abs_tol=1e-12)
    assert value >= exact - 1e-12


@settings(max_examples=100)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 60))
def test_the_first_search_and_the_dp_agree(seed: int, n: int) -> None:
    """On a grid the DP can table, ``_most`` tries the branch and bound first: the same
    value as the DP alone (``FIRST_NODES`` = 0), to the last bits of a float sum (the two
    add in other orders), and with the search cut short at 3 nodes."""
    rng = np.random.default_rng(seed)
    units = rng.integers(0, 3_000, size=n).tolist()
    values = rng.normal(0.3, 1.0, size=n).tolist()
    cells = int(rng.integers(0, 30_000))
    old = certificate.FIRST_NODES
    try:
        certificate.FIRST_NODES = 0
        by_dp = _most(units, values, cells)
        certificate.FIRST_NODES = old
        first = _most(units, values, cells)
        certificate.FIRST_NODES = 3
        cut_short = _most(units, values, cells)
    finally:
        certificate.FIRST_NODES = old
    assert math.isclose(first, by_dp, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(cut_short, by_dp, rel_tol=1e-12, abs_tol=1e-12)
    if n <= 10:
        assert math.isclose(by_dp, _brute_force(units, values, cells), abs_tol=1e-12)
