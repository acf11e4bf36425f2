"""Exact 0-1 knapsack for one ES's admission (the paper's P3, DESIGN section 3 rule 4).

Maximise the admitted load sum(Vt + Vr) subject to math.fsum(Prc) <= P, exactly for the real
(float64) numbers. Feasibility is decided in integers: every float is a dyadic rational, so
scaling all weights by a common power of two makes every subset sum an exact integer, and
``math.fsum`` is that exact sum correctly rounded. The largest integer sum whose rounding is
still <= P is computed once; no rounding can then reject a set that fits or admit one that
does not. The search is depth-first branch and bound in ratio order with the Dantzig (LP)
bound, which the field notes measured at well under a millisecond for 25-60 candidates.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from fractions import Fraction

import numpy as np

# Subtrees whose bound is within this relative distance of the incumbent are pruned: DESIGN
# allows ties to 1e-12 relative to be broken either way, and float bounds carry ~1e-15 error.
TIE_RTOL = 1e-13


def exact_scale(weights: list[float], capacity: float) -> tuple[list[int], int, int]:
    """Integer weights W, the scale D (a power of two) and the largest integer M such that a
    subset fits, fsum(w) <= capacity, iff the sum of its W is <= M."""
    ratios = [w.as_integer_ratio() for w in weights]
    upper = math.nextafter(capacity, math.inf)
    # The midpoint to the next float up needs one bit more than the capacity itself.
    cap_ratio = (Fraction(capacity) + Fraction(upper)) / 2
    scale = max([den for _, den in ratios] + [cap_ratio.denominator])
    ints = [num * (scale // den) for num, den in ratios]
    limit = math.floor(cap_ratio * scale)
    # int / int is correctly rounded in Python, exactly like math.fsum's result: step down
    # past the midpoint if the tie rounds up (at most one step).
    while limit >= 0 and limit / scale > capacity:
        limit -= 1
    return ints, scale, limit


def fits(weights: np.ndarray, capacity: float) -> bool:
    """DESIGN's definition of "a set of candidates fits an ES": fsum(Prc) <= P."""
    return math.fsum(weights.tolist()) <= capacity


def max_load_subset(weights_hz: np.ndarray, values: np.ndarray, capacity_hz: float) -> np.ndarray:
    """Boolean mask of a subset maximising sum(values) with fsum(weights) <= capacity.

    ``weights_hz`` must be finite and >= 0 (candidates with Prc > P or infinite Prc are
    rejected before this call, rule 3). Returns all-true when everything fits.
    """
    n = len(weights_hz)
    chosen = np.zeros(n, dtype=bool)
    if n == 0:
        return chosen
    wf = [float(w) for w in weights_hz]
    vf = [float(v) for v in values]
    ints, scale, limit = exact_scale(wf, float(capacity_hz))
    if sum(ints) <= limit:
        chosen[:] = True
        return chosen
    # Ratio order; weightless items lead (they never cost capacity).
    order = sorted(range(n), key=lambda i: -vf[i] / wf[i] if wf[i] > 0 else -math.inf)
    w = [ints[i] for i in order]
    v = [vf[i] for i in order]
    wr = [wf[i] for i in order]
    pw, pv = [0.0], [0.0]
    for a, b in zip(wr, v, strict=True):
        pw.append(pw[-1] + a)
        pv.append(pv[-1] + b)
    best_val, best = _greedy(w, v, limit)
    taken: list[int] = []

    def bound(i: int, room: int, val: float) -> float:
        # Dantzig bound: fill whole items in ratio order, then a fraction of the next.
        target = pw[i] + room / scale
        k = bisect_right(pw, target, lo=i + 1) - 1  # items i..k-1 fit whole
        b = val + (pv[k] - pv[i])
        if k < n:
            b += (target - pw[k]) * v[k] / wr[k] if wr[k] > 0 else v[k]
        return b

    def dfs(i: int, room: int, val: float) -> None:
        nonlocal best_val, best
        if val > best_val:
            best_val, best = val, list(taken)
        if i == n or bound(i, room, val) <= best_val * (1.0 + TIE_RTOL):
            return
        if w[i] <= room:
            taken.append(i)
            dfs(i + 1, room - w[i], val + v[i])
            taken.pop()
        dfs(i + 1, room, val)

    depth = sys.getrecursionlimit()
    if n + 50 > depth:
        sys.setrecursionlimit(n + 100)
    try:
        dfs(0, limit, 0.0)
    finally:
        sys.setrecursionlimit(depth)
    for j in best:
        chosen[order[j]] = True
    return chosen


def _greedy(w: list[int], v: list[float], limit: int) -> tuple[float, list[int]]:
    """Take items in ratio order whenever they still fit: the first incumbent."""
    room, val, taken = limit, 0.0, []
    for j, (a, b) in enumerate(zip(w, v, strict=True)):
        if a <= room:
            room -= a
            val += b
            taken.append(j)
    return val, taken
