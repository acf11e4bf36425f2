"""Exact 0-1 knapsack for one ES's admission (the paper's P3, docs/design.md §3 rule 4).

Maximise the admitted load sum(Vt + Vr) subject to math.fsum(Prc) <= P, exactly for the real
(float64) numbers. Feasibility is decided in integers: every float is a dyadic rational, so
scaling all weights by a common power of two makes every subset sum an exact integer, and
``math.fsum`` is that exact sum correctly rounded. The largest integer sum whose rounding is
still <= P is computed once; no rounding can then reject a set that fits or admit one that
does not. The search is depth-first branch and bound in ratio order with the Dantzig (LP)
bound, which the field notes measured at well under a millisecond for 25-60 candidates.
With more candidates (an overloaded ES at (5000, 32) has 100-400), the search first solves a
core of items around the critical one for a good incumbent and fixes every item whose forced
LP bound cannot beat it (Martello and Toth's reduction), which leaves some 10-40 free items.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right

import numpy as np

# Subtrees whose bound is within this relative distance of the incumbent are pruned: §3
# allows ties to 1e-12 relative to be broken either way, and float bounds carry ~1e-15 error.
TIE_RTOL = 1e-13
# Items either side of the critical one solved exactly for the first incumbent.
CORE_HALF = 8
# Search nodes before a hard case is handed to the dominance dynamic programme.
NODE_BUDGET = 4000
PARETO_MAX_ITEMS = 64  # beyond this many free items the search runs to the end instead


def exact_scale(weights: list[float], capacity: float) -> tuple[list[int], int, int]:
    """Integer weights W, the scale D (a power of two) and the largest integer M such that a
    subset fits, fsum(w) <= capacity, iff the sum of its W is <= M."""
    ratios = [w.as_integer_ratio() for w in weights]
    # The midpoint to the next float up needs one bit more than the capacity itself: with
    # power-of-two denominators q, r and d = max(q, r) it is (p d/q + s d/r) / (2 d).
    p, q = capacity.as_integer_ratio()
    s, r = math.nextafter(capacity, math.inf).as_integer_ratio()
    d = max(q, r)
    scale = max([den for _, den in ratios] + [2 * d])  # powers of two: every den divides it
    ints = [num * (scale // den) for num, den in ratios]
    limit = (p * (d // q) + s * (d // r)) * (scale // (2 * d))
    # int / int is correctly rounded in Python, exactly like math.fsum's result: step down
    # past the midpoint if the tie rounds up (at most one step).
    if limit >= 1 and limit / scale > capacity:
        limit -= 1
    return ints, scale, limit


def fits(weights: np.ndarray, capacity: float) -> bool:
    """docs/design.md §2's definition of "a set of candidates fits an ES": fsum(Prc) <= P."""
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
    wf = np.asarray(weights_hz, dtype=np.float64).tolist()
    vf = np.asarray(values, dtype=np.float64).tolist()
    if math.fsum(wf) <= capacity_hz:  # §2's definition of "all candidates fit"
        chosen[:] = True
        return chosen
    ints, scale, limit = exact_scale(wf, float(capacity_hz))
    # Ratio order; weightless items lead (they never cost capacity).
    order = sorted(range(n), key=lambda i: -vf[i] / wf[i] if wf[i] > 0 else -math.inf)
    w = [ints[i] for i in order]
    v = [vf[i] for i in order]
    wr = [wf[i] for i in order]
    if n <= 2 * CORE_HALF + 1:
        best = _branch_and_bound(w, v, wr, limit, scale, 0.0, -math.inf) or []
    else:
        best = _reduce_and_search(w, v, wr, limit, scale)
    for j in best:
        chosen[order[j]] = True
    return chosen


def _reduce_and_search(
    w: list[int], v: list[float], wr: list[float], limit: int, scale: int
) -> list[int]:
    """Many candidates: a core incumbent, variable fixing, then the search over what is left."""
    pw, pv = _prefix(wr), _prefix(v)
    c = bisect_right(_prefix_int(w), limit) - 1  # critical item: 0..c-1 fit whole, c not
    best_val, best = _core_incumbent(w, v, wr, limit, scale, c)
    fixed, free = _reduce(w, v, pw, pv, limit / scale, c, best_val)
    found = _branch_and_bound(
        [w[j] for j in free],
        [v[j] for j in free],
        [wr[j] for j in free],
        limit - sum(w[j] for j in fixed),
        scale,
        math.fsum(v[j] for j in fixed),
        best_val,
    )
    return best if found is None else fixed + [free[j] for j in found]


def _prune(bound: float, best_val: float) -> bool:
    """True if a region whose upper bound is ``bound`` cannot beat the incumbent (ties within
    TIE_RTOL go to the incumbent)."""
    return bound <= best_val * (1.0 + TIE_RTOL)


def _prefix(xs: list[float]) -> list[float]:
    out = [0.0]
    for x in xs:
        out.append(out[-1] + x)
    return out


def _prefix_int(xs: list[int]) -> list[int]:
    out = [0]
    for x in xs:
        out.append(out[-1] + x)
    return out


def _core_incumbent(
    w: list[int], v: list[float], wr: list[float], limit: int, scale: int, c: int
) -> tuple[float, list[int]]:
    """A good first incumbent: items well before the critical item c taken, items well after
    it left out, and the core of CORE_HALF items either side of c solved exactly.

    The greedy solution alone is often 1-2 % below the optimum on overloaded ESs, which
    leaves the reduction nothing to fix; the core's optimum is usually within 1e-4."""
    lo, hi = max(0, c - CORE_HALF), min(len(w), c + CORE_HALF + 1)
    room = limit - sum(w[:lo])
    val = math.fsum(v[:lo])
    found = _branch_and_bound(w[lo:hi], v[lo:hi], wr[lo:hi], room, scale, val, -math.inf)
    taken = list(range(lo)) + [lo + j for j in found or []]
    room -= sum(w[j] for j in taken[lo:])
    for j in range(hi, len(w)):  # fill what is left greedily
        if w[j] <= room:
            room -= w[j]
            taken.append(j)
    return math.fsum(v[j] for j in taken), taken


def _reduce(
    w: list[int],
    v: list[float],
    pw: list[float],
    pv: list[float],
    cap: float,
    c: int,
    best_val: float,
) -> tuple[list[int], list[int]]:
    """Variable fixing (Martello and Toth, "Knapsack Problems", 1990, section 2.7).

    Items are in ratio order and c is the critical item. For each j < c the LP bound with x_j
    forced to 0, and for each j > c the LP bound with x_j forced to 1, is computed exactly
    from prefix sums; where it cannot beat the incumbent, x_j keeps its LP value in every
    better solution. Returns (indices fixed to 1, free indices)."""
    n = len(w)

    def lp_tail(target: float, k: int) -> float:
        # the fraction of item k that fills total weight ``target`` after items 0..k-1
        return (target - pw[k]) * v[k] / (pw[k + 1] - pw[k]) if k < n else 0.0

    fixed, free = [], []
    for j in range(n):
        wj = pw[j + 1] - pw[j]
        if j < c:
            # without j, items 0..k-1 (j excluded) fit whole where pw[k] <= cap + w_j
            target = cap + wj
            k = bisect_right(pw, target, lo=c) - 1
            if _prune(pv[k] - v[j] + lp_tail(target, k), best_val):
                fixed.append(j)
                continue
        elif j > c:
            target = cap - wj
            if target < 0:
                continue  # cannot be taken at all (fixed to 0)
            k = bisect_right(pw, target, hi=c + 1) - 1
            if _prune(v[j] + pv[k] + lp_tail(target, k), best_val):
                continue  # fixed to 0
        free.append(j)
    return fixed, free


def _branch_and_bound(
    w: list[int],
    v: list[float],
    wr: list[float],
    room: int,
    scale: int,
    val: float,
    best_val: float,
) -> list[int] | None:
    """Depth-first search in ratio order with the Dantzig (LP) bound over the free items.

    Returns the indices of a subset that beats ``best_val`` (with ``val`` already taken), or
    None when none does. Past NODE_BUDGET nodes (items of nearly equal ratio, where the LP
    bound is weak) the same question goes to the dominance dynamic programme instead."""
    # The dominance programme's state count can grow fast with many continuous weights.
    budget = NODE_BUDGET if len(w) <= PARETO_MAX_ITEMS else math.inf
    try:
        return _depth_first(w, v, wr, room, scale, val, best_val, budget)
    except _OutOfNodes:
        total, found = _pareto(w, v, room)
        return found if val + total > best_val else None


class _OutOfNodes(Exception):
    pass


def _depth_first(
    w: list[int],
    v: list[float],
    wr: list[float],
    room: int,
    scale: int,
    val: float,
    best_val: float,
    budget: float,
) -> list[int] | None:
    n = len(w)
    nodes = 0
    pw, pv = [0.0], [0.0]
    for a, b in zip(wr, v, strict=True):
        pw.append(pw[-1] + a)
        pv.append(pv[-1] + b)
    best: list[int] | None = None
    taken: list[int] = []

    def bound(i: int, room: int, val: float) -> float:
        # Dantzig bound: fill whole items in ratio order, then a fraction of the next.
        target = pw[i] + room / scale
        k = bisect_right(pw, target, lo=i + 1) - 1  # items i..k-1 fit whole
        b = val + (pv[k] - pv[i])
        if k < n:
            b += (target - pw[k]) * v[k] / wr[k] if wr[k] > 0 else v[k]
        return b

    # lightest item from i on: with less room than that, a node is a leaf
    lightest = [math.inf] * (n + 1)
    for i in range(n - 1, -1, -1):
        lightest[i] = min(lightest[i + 1], w[i])

    def dfs(i: int, room: int, val: float, known: bool) -> None:
        # ``known``: this node's bound equals its parent's, which was not pruned (taking the
        # next item in ratio order keeps the LP solution) and the incumbent has not changed.
        nonlocal best_val, best, nodes
        nodes += 1
        if nodes > budget:
            raise _OutOfNodes
        if val > best_val:
            best_val, best, known = val, list(taken), False
        if room < lightest[i] or not (known or not _prune(bound(i, room, val), best_val)):
            return
        if w[i] <= room:
            taken.append(i)
            dfs(i + 1, room - w[i], val + v[i], True)
            taken.pop()
        dfs(i + 1, room, val, False)

    depth = sys.getrecursionlimit()
    if n + 50 > depth:
        sys.setrecursionlimit(n + 100)
    try:
        dfs(0, room, val, False)
    finally:
        sys.setrecursionlimit(depth)
    return best


def _pareto(w: list[int], v: list[float], room: int) -> tuple[float, list[int]]:
    """Exact optimum by dominance (Nemhauser and Ullmann): after each item, keep the subsets
    that no lighter-or-equal subset beats in value. Their number is bounded by the distinct
    weight sums, which is what makes it robust where the LP bound is weak."""
    states = [(0, 0.0, 0)]  # (integer weight, value, bit mask of items), weight ascending
    for i, (wi, vi) in enumerate(zip(w, v, strict=True)):
        bit = 1 << i
        grown = [(a + wi, b + vi, m | bit) for a, b, m in states if a + wi <= room]
        merged = sorted(states + grown, key=lambda s: (s[0], -s[1]))
        states, top = [], -math.inf
        for state in merged:
            if state[1] > top:
                states.append(state)
                top = state[1]
    _, value, mask = states[-1]
    return value, [i for i in range(len(w)) if mask >> i & 1]
