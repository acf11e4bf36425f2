"""The Lagrangian engine's knapsack: an upper bound on one ES's best subset, on an integer grid.

The engine's bound (:mod:`.lagrangian`) needs, for each ES and each set of multipliers, the
largest value of a subset of candidates that fits the ES. At the multipliers that matter the
values are nearly proportional to the weights (a subset-sum-like knapsack), where branch and
bound on real weights can take minutes (85 s on one ES was measured). Dynamic programming
over capacity does not care how values relate to weights, so every weight is rounded *down*
to a grid (1 MHz by default) and the capacity is the largest grid count any subset that truly
fits can reach. Every subset that fits on the real numbers then fits on the grid, so the DP's
optimum is an upper bound on the real one (a relaxation), which is all a lower bound on the
step's objective needs. The grid's cost is a little tightness: at most one grid unit per
admitted candidate.

The DP is compiled with numba, its table swept in vectorised chunks (``DP_CHUNK``): one ES's
table in a (200, 8) tie-break's tree (median 86 candidates, 66,000 grid units) takes 1.6 ms,
against 3.8 ms cell by cell (the same floats) and more as numpy row operations. It sweeps
only the cells that can change what is read: none above the units of the items so far (they
all hold those items' sum), none below what later items and the caller read (``lowest``:
the penalties read only the cells a forced item leaves). On 4,000 tables of a tree at
(200, 8) that is 26 % fewer cells, and with a max where a select became a masked store, 1.7-1.9
times faster on an AMD EPYC (2 with the one-loop sweep below), every cell read and every
subset the same to the last bit.

Where only the best value and one subset reaching it are needed (every round of the ascent and
of column generation), :func:`best_value` first runs a branch and bound on the same grid problem
(Horowitz-Sahni: ratio order, depth first, Dantzig's bound), exact like the DP. On the
tie-break's knapsacks it settles most in a few hundred nodes of ~0.1 us (over one certification
at (200, 8), 2,848 knapsacks: median 870 nodes, max 29,219; 0.33 s in all against 15.6 s for
the DP). Where values are proportional to weights (a subset-sum: the LP duals of an overloaded
load stage) its bound prunes nothing, so it stops at ``BRANCH_NODES`` and the DP answers.
Plans need no bound, only a subset that fits: :func:`good_subset` keeps the branch and
bound's best subset where it stops, without the DP.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np

GRID_HZ = 1e6  # 1 MHz: weights are 1-5 GHz, the slack of an optimal packing is often MHz
# Whole hertz: the bound of the real weights (each rounded down by less than 1 Hz). Only
# branch and bound searches it (capacities of some 1e11 units, far beyond any DP table). The
# engine's ascents run on it (docs/design.md §9): at the same multipliers the 1 MHz grid's
# bound was 22 KB (0.09 %) lower on one (280, 8) load stage, a sixth of HiGHS's gap there, and
# on a (200, 8) tie-break the ascent on whole hertz reached 80.05 (proving 81 migrations)
# where the 1 MHz one stalled at 79.36. Only the DP's table (penalties) needs the 1 MHz grid.
WHOLE_HZ = 1.0
# The branch and bound's work limit before the DP takes over: some 5 ms of nodes, about what
# the DP needs for one ES at (200, 8) (100-150 candidates, 60,000-90,000 grid units).
BRANCH_NODES = 50_000
# The DP's table has capacity + 1 cells per item. Where a branch and bound on a finer grid stops
# at its node limit, the DP answers on the grid coarsened by the least integer factor that
# brings the capacity within this many units: floor(floor(w / g) / f) = floor(w / (g f)), so
# that is the same relaxation on the grid g f, still an upper bound (1 MHz for the 1 Hz grid).
DP_MAX_UNITS = 200_000
# The branch and bound's work limit on such a fine grid, where the DP that follows is both
# looser and dearer (some 40 ms at (280, 8)): over one ascent at (280, 8), 50,000 nodes fell
# back on 25 and 142 of 1,256 and 1,680 knapsacks (0.8 s and 7.7 s), 500,000 on 1 and 2
# (0.18 s and 0.39 s); the median knapsack took 3,500-7,300 nodes.
FINE_BRANCH_NODES = 500_000
# best_subset refuses a table beyond this (10 THz on the 1 MHz grid): the load stage's 1 Hz grid
# has no table (its bound needs none, and reduced-cost fixing is the tie-break's).
MAX_TABLE_UNITS = 10_000_000


def floor_units(weights_hz: np.ndarray, grid_hz: float) -> np.ndarray:
    """floor(w / grid) exactly, for finite weights >= 0 (the float quotient can round up to the
    next integer; the product q * grid is exact below 2^53, so one comparison corrects it)."""
    q = np.floor(weights_hz / grid_hz)
    q -= q * grid_hz > weights_hz
    return q.astype(np.int64)


def capacity_units(capacity_hz: float, grid_hz: float) -> int:
    """The largest sum of floored weights of a subset whose fsum is <= capacity. fsum is the
    exact sum correctly rounded, so the exact sum of a fitting subset may exceed the capacity
    by half an ulp; the next float up covers that. Computed in exact rationals."""
    return math.floor(Fraction(math.nextafter(capacity_hz, math.inf)) / Fraction(grid_hz))


# The DP sweeps the table in chunks of this many cells (8 KB of candidates, in L1): each
# chunk's candidates best[c - w] + v are read into a buffer before the chunk is written, so
# both loops run on distinct arrays and compile to vector instructions (docs/exact.md: 2.2
# times faster on a tie-break tree's tables), with the very same float operations and
# comparisons as the cell-by-cell loop, hence the same table and subset to the last bit. An
# item of at least a chunk's units (most: 1-5 GHz on the 1 MHz grid) reads candidates wholly
# below the chunk, so one loop does it without the buffer (1.2 times faster on the EPYC).
DP_CHUNK = 1024


# The DP's record of which item improved which cell (one byte a cell, some MB at (200, 8)) is
# written into one buffer kept by the process and reused up to this size: a fresh array each
# call cost an eighth of the DP's time in page faults (1.76 -> 1.57 ms a table). Larger tables
# get an array of their own, freed after the call. The compiled DP holds the GIL, so one call
# at a time writes the buffer, whatever the threads.
TOOK_REUSE_BYTES = 32 * 2**20
_took_buffer = np.empty(0, np.uint8)


def _took(n: int, cells: int) -> np.ndarray:
    """An (n, cells) uint8 array for the DP's record, its contents undefined (the DP writes
    every cell it reads)."""
    global _took_buffer
    size = n * cells
    if size > TOOK_REUSE_BYTES:
        return np.empty((n, cells), np.uint8)
    if _took_buffer.size < size:
        grown = min(max(size, 2 * _took_buffer.size), TOOK_REUSE_BYTES)
        _took_buffer = np.empty(grown, np.uint8)
    return _took_buffer[:size].reshape(n, cells)


@numba.njit(cache=True)
def _best_subset(units, values, capacity, lowest, took):  # pragma: no cover - compiled
    n = units.shape[0]
    # prefix[i]: the units of items 0..i (capped just above the capacity). Every cell from
    # there up holds the same value after item i: the DP's float sum of all of them (by
    # induction: such a cell and the one w below it both held the sum before item i), and
    # every such cell took item i, or none did (sat[i]). So those cells are not swept.
    prefix = np.empty(n, np.int64)
    sat = np.empty(n, np.bool_)
    # need[i]: the lowest cell of row i that anything after it reads (a later item reads
    # w below its own cells, and the caller reads nothing below ``lowest``)
    need = np.empty(n, np.int64)
    above = 0
    for i in range(n - 1, -1, -1):
        need[i] = max(lowest - above, 0)
        above = min(above + units[i], capacity + 1)
    best = np.empty(capacity + 1)
    buffer = np.empty(DP_CHUNK)
    reach, total = 0, 0.0  # the cells from ``reach`` up hold ``total`` (not yet written)
    for i in range(n):
        w = units[i]
        v = values[i]
        row = took[i]
        top = min(reach + w, capacity + 1)  # cells from here up are saturated after item i
        for c in range(reach, top):  # cells the item may change, saturated until now
            best[c] = total
        # 0-1 knapsack: cell c takes best[c - w] + v from before this item. Chunks go from the
        # top down and each reads its candidates before it writes, so every cell it reads
        # (w below its own) still holds its value from before this item.
        bottom = max(w, need[i])
        hi = top - 1
        while hi >= bottom:
            lo = max(bottom, hi - DP_CHUNK + 1)
            k = hi - lo + 1
            # Views indexed by a range's counter: no negative-index wrap test in the loops,
            # which is what lets them vectorise.
            source = best[lo - w : lo - w + k]
            target = best[lo : lo + k]
            marks = row[lo : lo + k]
            # max, not "candidate if better else old": LLVM makes that a masked store
            # (vmaskmovpd), microcoded on AMD's cores; the cells are finite and never -0.0,
            # so max keeps the same bits (docs/exact.md)
            if w >= k:  # the candidates lie wholly below the chunk: one loop, no buffer
                for j in range(k):
                    old = target[j]
                    candidate = source[j] + v
                    marks[j] = np.uint8(1) if candidate > old else np.uint8(0)
                    target[j] = max(old, candidate)
            else:
                for j in range(k):
                    buffer[j] = source[j] + v
                for j in range(k):
                    old = target[j]
                    candidate = buffer[j]
                    marks[j] = np.uint8(1) if candidate > old else np.uint8(0)
                    target[j] = max(old, candidate)
            hi = lo - 1
        candidate = total + v
        sat[i] = candidate > total
        if sat[i]:
            total = candidate
        reach = top
        prefix[i] = top
    for c in range(reach, capacity + 1):
        best[c] = total
    for c in range(min(lowest, capacity + 1)):
        best[c] = np.nan  # never computed exactly: nobody may read it
    chosen = np.zeros(n, np.bool_)
    c = capacity
    for i in range(n - 1, -1, -1):
        if c < units[i]:
            continue
        if (sat[i] if c >= prefix[i] else took[i, c]) != 0:
            chosen[i] = True
            c -= units[i]
    return best, chosen


def best_subset(
    units: np.ndarray, values: np.ndarray, capacity: int, lowest: int = 0
) -> tuple[float, np.ndarray, np.ndarray]:
    """(max sum of values, the mask reaching it, the table) over subsets with sum(units) <=
    capacity; table[c] is the best value within c units (c = lowest..capacity; NaN below
    ``lowest``, which the DP need not fill), which bounds what is left for the others when
    one item is forced in. Items with a value <= 0 are never taken; items heavier than the
    capacity never fit."""
    if capacity > MAX_TABLE_UNITS:
        raise ValueError(f"a DP table of {capacity} units is too large: use a coarser grid")
    take = (values > 0) & (units <= capacity)
    chosen = np.zeros(units.shape[0], dtype=bool)
    if not take.any() or capacity < 0:
        return 0.0, chosen, np.zeros(max(capacity, 0) + 1)
    idx = np.flatnonzero(take)
    table, sub = _best_subset(
        np.ascontiguousarray(units[idx], dtype=np.int64),
        np.ascontiguousarray(values[idx], dtype=np.float64),
        int(capacity),
        int(max(lowest, 0)),
        _took(idx.size, int(capacity) + 1),
    )
    chosen[idx[sub]] = True
    return float(table[capacity]), chosen, table


@numba.njit(cache=True)
def _branch_and_bound(units, values, capacity, node_limit):  # pragma: no cover - compiled
    """Horowitz-Sahni on items with values > 0 and units <= capacity: (best, mask, nodes),
    best = -1.0 when the node limit stopped it, the mask then the best subset found so far.
    Float sums: the value may differ from the DP's by rounding (1e-12 measured), far below
    the bound's INTEGER_SLACK."""
    n = units.shape[0]
    ratio = np.empty(n)
    for i in range(n):
        ratio[i] = values[i] / units[i] if units[i] > 0 else np.inf
    order = np.argsort(-ratio, kind="mergesort")  # stable: the same tree on every run
    w = units[order]
    v = values[order]
    x = np.zeros(n, np.bool_)
    best_x = np.zeros(n, np.bool_)
    best = 0.0
    used, value, i, nodes = 0, 0.0, 0, 0
    stopped = False
    while True:
        nodes += 1
        if nodes > node_limit:
            stopped = True
            break
        # Dantzig's bound: the items from i in ratio order while they fit, then a fraction
        room, bound, j = capacity - used, value, i
        while j < n and w[j] <= room:
            room -= w[j]
            bound += v[j]
            j += 1
        filled, stop = bound, j  # the items from i that fit in turn, and their value
        if j < n and w[j] > 0:
            bound += room * (v[j] / w[j])
        if bound > best:
            # forward: take while they fit, the very items (and sums) the bound just took
            for t in range(i, stop):
                x[t] = True
            used = capacity - room
            value = filled
            i = stop
            if i < n:  # item i does not fit: its "out" branch, then bound again
                x[i] = False
                i += 1
                continue
            if value > best:
                best = value
                best_x[:] = x
        # backtrack: the last item taken goes out, and the search goes on after it
        k = i - 1
        while k >= 0 and not x[k]:
            k -= 1
        if k < 0:
            break
        x[k] = False
        used -= w[k]
        value -= v[k]
        i = k + 1
    chosen = np.zeros(n, np.bool_)
    for a in range(n):
        if best_x[a]:
            chosen[order[a]] = True
    return (-1.0 if stopped else best), chosen, nodes


def best_value(
    units: np.ndarray, values: np.ndarray, capacity: int, node_limit: int | None = None
) -> tuple[float, np.ndarray]:
    """(max sum of values, a mask reaching it) as :func:`best_subset`, without the table:
    branch and bound, then the DP where that stops at ``node_limit`` nodes (by default
    ``BRANCH_NODES``, or ``FINE_BRANCH_NODES`` beyond the DP's table; on a coarser grid
    where the capacity exceeds ``DP_MAX_UNITS``: a larger value, still an upper bound, and a
    mask that may not fit the finer grid). Among subsets of equal value the two may pick
    different ones."""
    best, chosen = _search(units, values, capacity, node_limit)
    if best < 0.0:
        factor = -(-int(capacity) // DP_MAX_UNITS)  # the least that fits the table
        coarse = int(capacity) // factor  # only its best value and subset: no lower cell
        best, chosen, _ = best_subset(units // factor, values, coarse, lowest=coarse)
    return best, chosen


def good_subset(
    units: np.ndarray, values: np.ndarray, capacity: int, node_limit: int | None = None
) -> np.ndarray:
    """A mask of most value found within ``capacity`` units: the branch and bound's optimum
    where it finishes within ``node_limit`` nodes (default as :func:`best_value`), else the
    best subset it had found by then, which fits the same grid. For plans, which need a
    subset that fits and no bound: the DP fallback of :func:`best_value` is an upper bound
    on a coarser grid whose mask may not fit, and it costs about 0.7 s an ES at (5000, 32)
    (some 2,400 candidates), where 100 orders of the load plans' knapsacks made 1,000 such
    fallbacks (docs/design.md §9)."""
    return _search(units, values, capacity, node_limit)[1]


def _search(
    units: np.ndarray, values: np.ndarray, capacity: int, node_limit: int | None
) -> tuple[float, np.ndarray]:
    """The branch and bound on the items that can be taken: (its value, or -1.0 where the
    node limit stopped it; its mask over all items, the best found so far where stopped)."""
    take = (values > 0) & (units <= capacity)
    chosen = np.zeros(units.shape[0], dtype=bool)
    if not take.any() or capacity < 0:
        return 0.0, chosen
    idx = np.flatnonzero(take)
    if node_limit is None:
        node_limit = BRANCH_NODES if capacity <= DP_MAX_UNITS else FINE_BRANCH_NODES
    best, sub, _ = _branch_and_bound(
        np.ascontiguousarray(units[idx], dtype=np.int64),
        np.ascontiguousarray(values[idx], dtype=np.float64),
        int(capacity),
        int(node_limit),
    )
    chosen[idx[sub]] = True
    return float(best), chosen
