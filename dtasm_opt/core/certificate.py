"""Checking a Lagrangian certificate of optimality (``dtasm-certificate/1``) independently.

A solution may carry, in ``info.certificate``, multipliers from which a lower bound on the
step's objective follows (docs/design.md §3, the step's exact optimum, and docs/design.md's
section on certificates). For each stage, with one multiplier lam[u] per user:

- ``load``: L = total load + sum_u lam[u] - sum_h KP_h, lam <= 0, over the users with at
  least one admissible pair; a lower bound on the cloud load of every plan.
  With ``cloud_sets`` (an overloaded load stage proven by its cloud sets), the bound rises
  to the claimed one where every set C of users with an admissible pair whose load lies
  between the multipliers' bound and the claim has an entry {users: C, multipliers}, whose
  bound on the plans with C's users in the cloud (their rows and pairs removed) is above
  load(C): no plan's cloud is exactly C. This module enumerates those sets itself.
- ``migrations``: with S the users that the solution serves (its final server is an ES),
  L = (users of an ES outside S) + sum_{u in S} lam[u] - sum_h KP_h; a lower bound on the
  migrations of every plan that serves exactly S (the tie-break among load-optimal plans).

KP_h is the most that ES h can take of the values (lam[u] - cost of u on h) over subsets of
its admissible users that fit it. This module computes it from the physics (its own
admissibility test, not the solvers' pair list) with its own knapsacks (a branch and bound,
then a dynamic programme): every weight rounded down to the certificate's grid and the
capacity rounded up (exact rational arithmetic), which can only raise KP_h, so the
recomputed L is a valid bound whatever the multipliers are. A claim is accepted when the
recomputed bound reaches it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from fractions import Fraction
from typing import TypeGuard

import numpy as np

from dtasm_opt.core.instance import Instance
from dtasm_opt.core.physics import load_bits, target_physics
from dtasm_opt.core.units import BITS_PER_BYTE

CERTIFICATE_FORMAT = "dtasm-certificate/1"
MAX_GRID_CELLS = 10_000_000  # per ES: a finer grid would make the DP slow, not wrong
# A load stage's own grid (``load.grid_hz``) may be finer: its knapsacks are then solved by
# branch and bound, exact on the grid's integers, within this many nodes each; beyond that by
# the DP on a grid coarsened to FALLBACK_CELLS cells (a valid, looser bound).
CHECK_NODES = 2_000_000
FIRST_NODES = 20_000  # the branch and bound's nodes on a grid the DP can table (then the DP)
FALLBACK_CELLS = 200_000
INTEGER_SLACK = 1e-6  # a migrations bound this close above an integer proves that integer
PROGRESS_NODES = 500  # a tree's check reports its progress this often
MAX_CHECKED_CLOUD_SETS = 100_000  # cloud sets between a load bound and its claim, at most

Progress = Callable[[int, int], None]  # (done, total)


def admissible(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """(U, H) bool: u can be admitted on h alone (C2, C3); (U, H) its required capacity."""
    h_all = np.arange(inst.n_servers)[None, :]
    phys = target_physics(inst, h_all)
    home = inst.users.server[:, None] == h_all
    ok = (
        (home | (phys.migration_s <= inst.xi_s))
        & (phys.comm_s < inst.users.latency_limit_s[:, None])
        & (phys.required_hz <= inst.servers.capacity_hz[None, :])
    )
    return ok, np.where(ok, phys.required_hz, 0.0)


def _units(hz: float, grid: float) -> int:
    return math.floor(Fraction(hz) / Fraction(grid))


def _capacity_units(capacity_hz: float, grid: float) -> int:
    # fsum(weights) <= capacity allows an exact sum half an ulp above it: the next float up
    return _units(math.nextafter(capacity_hz, math.inf), grid)


def _table(units: list[int], values: list[float], cells: int) -> np.ndarray:
    """table[c]: max sum(values) over subsets whose units sum to at most c (c = 0..cells)."""
    best = np.zeros(cells + 1)
    for w, v in zip(units, values, strict=True):
        if v <= 0 or w > cells:
            continue
        if w == 0:
            best += v
            continue
        np.maximum(best[w:], best[:-w] + v, out=best[w:])
    return best


class _Knapsacks:
    """Every KP_h of one stage on one grid: the admissible pairs (``admissible``), their
    weights floored to the grid once (exact rationals, the costly part), and the value of
    each knapsack already solved. A tree's leaves share most of theirs: siblings closed at
    their parent's multipliers differ only in the ESs their placed user can take, so the
    other ESs' knapsacks are the same problem, solved once (a tree of 155 nodes and 567
    leaves: 4,536 knapsacks, 1,708 distinct)."""

    def __init__(self, inst: Instance, grid: float) -> None:
        self.ok, self.required = admissible(inst)
        self.units = np.zeros(self.ok.shape, dtype=np.int64)
        for u, h in zip(*np.nonzero(self.ok), strict=True):
            self.units[u, h] = _units(float(self.required[u, h]), grid)
        self.cells = [_capacity_units(float(c), grid) for c in inst.servers.capacity_hz]
        self._solved: dict[tuple, float] = {}

    def most(self, h: int, users: np.ndarray, values: np.ndarray, used: int) -> float:
        """KP_h over ``users`` (admissible on h) at ``values``, ``used`` units taken."""
        key = (h, used, users.tobytes(), values.tobytes())
        if key not in self._solved:
            self._solved[key] = _most(
                self.units[users, h].tolist(), values.tolist(), self.cells[h] - used
            )
        return self._solved[key]


def recompute(
    inst: Instance,
    stage: str,
    multipliers: np.ndarray,
    grid: float,
    served: np.ndarray,
    forced: dict[int, int] | None = None,
    knapsacks: _Knapsacks | None = None,
    cloud: tuple[int, ...] = (),
) -> float:
    """The certificate's bound for ``stage`` ("load" or "migrations"), recomputed; for the
    migrations stage, ``forced`` {user: ES} restricts it to the plans that place those users
    so (a node of a tree certificate; the caller checks that each pair is admissible): they
    lose their rows, pay their move and take their floored units from their ES. +inf where
    the forced users alone overfill an ES's grid. ``knapsacks``, on ``grid``, carries the
    knapsacks that other calls solved. ``cloud``: for the load stage, users held in the cloud
    (no row, in no knapsack: a cloud set's refutation)."""
    kps = _Knapsacks(inst, grid) if knapsacks is None else knapsacks
    ok = kps.ok
    home = inst.users.server[:, None] == np.arange(inst.n_servers)[None, :]
    forced = forced or {}
    if stage == "load":
        rows = np.asarray(ok.any(axis=1), dtype=bool)
        rows[list(cloud)] = False
        lam = np.where(rows, np.minimum(multipliers, 0.0), 0.0)
        profit = load_bits(inst) / BITS_PER_BYTE
        value = lam[:, None] + profit[:, None] * np.ones(inst.n_servers)[None, :]
        const = math.fsum(profit.tolist())
    else:
        rows = served.copy()
        rows[list(forced)] = False
        lam = np.where(rows, multipliers, 0.0)
        value = lam[:, None] - np.where(home, 0.0, 1.0)
        from_edge = inst.users.server != inst.cloud
        moves = sum(int(inst.users.server[u] != h) for u, h in forced.items())
        const = float(np.count_nonzero(from_edge & ~served) + moves)
    used = np.zeros(inst.n_servers, dtype=np.int64)
    for u, h in forced.items():
        used[h] += kps.units[u, h]
    kp = []
    for h in range(inst.n_servers):
        if used[h] > kps.cells[h]:
            return math.inf
        users = np.flatnonzero(ok[:, h] & rows)
        kp.append(kps.most(h, users, value[users, h], int(used[h])))
    return const + math.fsum(lam[rows].tolist()) - math.fsum(kp)


def _most(units: list[int], values: list[float], cells: int) -> float:
    """An upper bound on KP, the best value of a subset of items (weights in grid units)
    that fits ``cells`` units. Exact on the grid's integers by a branch and bound within
    ``FIRST_NODES`` nodes (most of a tree's knapsacks take a few thousand; five times faster
    than the DP there), or ``CHECK_NODES`` where the grid has more than ``MAX_GRID_CELLS``
    cells; where it stops, the DP, on a grid coarse enough for ``FALLBACK_CELLS`` cells where
    the grid is that fine (a larger value: a bound that may miss the claim)."""
    fine = cells > MAX_GRID_CELLS
    best = _branch_and_bound(units, values, cells, CHECK_NODES if fine else FIRST_NODES)
    if best is not None:
        return best
    if fine:
        # floor(floor(w / g) / f) = floor(w / (g f)), and a fitting subset's coarse units sum
        # to at most floor(cells / f): the same relaxation on the grid g f
        factor = -(-cells // FALLBACK_CELLS)
        units, cells = [u // factor for u in units], cells // factor
    return float(_table(units, values, cells)[-1])


def _branch_and_bound(
    units: list[int], values: list[float], cells: int, limit: int
) -> float | None:
    """max sum(values) over subsets with sum(units) <= cells, items in decreasing value per
    unit, depth first, pruned by Dantzig's bound (the items in order while they fit, then a
    fraction); None after ``limit`` nodes."""
    free = math.fsum(v for u, v in zip(units, values, strict=True) if v > 0 and u == 0)
    items = sorted(
        ((u, v) for u, v in zip(units, values, strict=True) if v > 0 and 0 < u <= cells),
        key=lambda item: -item[1] / item[0],
    )
    w_sum, v_sum = [0], [0.0]  # prefix sums in that order
    for u, v in items:
        w_sum.append(w_sum[-1] + u)
        v_sum.append(v_sum[-1] + v)
    n, best, nodes = len(items), 0.0, 0
    stack = [(0, cells, 0.0)]  # (next item, room left, value so far)
    while stack:
        i, room, value = stack.pop()
        nodes += 1
        if nodes > limit:
            return None
        # items i..j-1 fit whole: a feasible plan, and with a share of item j the bound
        j = bisect.bisect_right(w_sum, w_sum[i] + room) - 1
        greedy = value + v_sum[j] - v_sum[i]
        best = max(best, greedy)
        if j == n:
            continue
        rest = room - (w_sum[j] - w_sum[i])
        if greedy + rest * items[j][1] / items[j][0] <= best:
            continue
        u, v = items[i]
        stack.append((i + 1, room, value))  # without item i
        if u <= room:
            stack.append((i + 1, room - u, value + v))  # with it, searched first
    return free + best


def check(
    inst: Instance,
    doc: dict,
    final: np.ndarray,
    cloud_load: float,
    migrated: int,
    progress: Progress | None = None,
) -> list[str]:
    """Problems with ``doc["info"]["certificate"]`` (none when there is no certificate);
    ``progress(read, nodes)`` follows a tree's check (:func:`tree_bound`)."""
    info = doc.get("info")
    cert = info.get("certificate") if isinstance(info, dict) else None
    if cert is None:
        return []
    where = "info.certificate"
    if not isinstance(cert, dict) or cert.get("format") != CERTIFICATE_FORMAT:
        return [f"{where}: expected an object with format {CERTIFICATE_FORMAT!r}"]
    grid = cert.get("grid_hz")
    if not _number(grid) or not grid > 0 or not math.isfinite(grid):
        return [f"{where}.grid_hz: {grid!r} is not a positive number"]
    if float(inst.servers.capacity_hz.max()) / grid > MAX_GRID_CELLS:
        return [f"{where}.grid_hz: {grid!r} Hz is too fine to check (over {MAX_GRID_CELLS} cells)"]
    problems: list[str] = []
    served = final != inst.cloud
    # Loads are bytes summed in floats (totals near 1e8): allow 1e-12 of the total load.
    total = float(load_bits(inst).sum()) / BITS_PER_BYTE
    for stage, key, value in (
        ("load", "bound_bytes", cloud_load),
        ("migrations", "bound", float(migrated)),
    ):
        part = cert.get(stage)
        if part is None:
            continue
        lam = part.get("multipliers") if isinstance(part, dict) else None
        claimed = part.get(key) if isinstance(part, dict) else None
        if (
            not isinstance(lam, list)
            or len(lam) != inst.n_users
            or not all(_number(x) and math.isfinite(x) for x in lam)
        ):
            problems.append(f"{where}.{stage}.multipliers: expected {inst.n_users} finite numbers")
            continue
        if not _number(claimed) or not math.isfinite(claimed):
            problems.append(f"{where}.{stage}.{key}: {claimed!r} is not a finite number")
            continue
        own = part.get("grid_hz", grid)  # a stage's own grid, or the certificate's
        if not _number(own) or not own > 0 or not math.isfinite(own):
            problems.append(f"{where}.{stage}.grid_hz: {own!r} is not a positive number")
            continue
        if stage == "load" and "cloud_sets" in part:
            base = recompute(inst, stage, np.asarray(lam, dtype=np.float64), float(own), served)
            tol = 1e-9 * max(abs(base), abs(value), 1.0) + 1e-12 * total
            bound, set_problems = cloud_set_bound(
                inst, part["cloud_sets"], base, float(claimed), float(own), tol
            )
            if set_problems:
                problems += [f"{where}.{stage}.cloud_sets{p}" for p in set_problems]
                continue
        elif stage == "migrations" and "tree" in part:
            bound, tree_problems = tree_bound(inst, part, float(own), served, progress)
            if tree_problems:
                problems += [f"{where}.{stage}.{p}" for p in tree_problems]
                continue
        else:
            bound = recompute(inst, stage, np.asarray(lam, dtype=np.float64), float(own), served)
        tol = 1e-9 * max(abs(bound), abs(value), 1.0) + (1e-12 * total if stage == "load" else 0)
        if claimed > bound + tol:
            problems.append(
                f"{where}.{stage}.{key}: claims {claimed!r}, its multipliers give only {bound!r}"
            )
        elif claimed > value + tol:
            problems.append(
                f"{where}.{stage}.{key}: {claimed!r} exceeds the solution's own value {value!r}"
            )
        elif part.get("proves_optimal") is True and not _proves(stage, claimed, value, tol):
            problems.append(
                f"{where}.{stage}: claims to prove the solution optimal, but its bound "
                f"{claimed!r} is below the solution's {value!r}"
            )
    return problems


def cloud_set_bound(
    inst: Instance, entries: object, base: float, claimed: float, grid: float, tol: float
) -> tuple[float, list[str]]:
    """A load bound lifted by refuted cloud sets: ``claimed`` where every set C of users with
    an admissible pair, base - tol <= forced + load(C) < claimed - tol, has an entry whose
    multipliers bound the plans with C in the cloud above forced + load(C); else ``base``
    and the problems (each naming its entry or set)."""
    if not isinstance(entries, list):
        return base, [": expected a list of {users, multipliers}"]
    kps = _Knapsacks(inst, grid)
    has = np.asarray(kps.ok.any(axis=1), dtype=bool)
    profit = load_bits(inst) / BITS_PER_BYTE
    forced = math.fsum(profit[~has].tolist())
    by_set: dict[frozenset, list] = {}
    for i, entry in enumerate(entries):
        users = entry.get("users") if isinstance(entry, dict) else None
        lam = entry.get("multipliers") if isinstance(entry, dict) else None
        if (
            not isinstance(users, list)
            or not users
            or not all(isinstance(u, int) and not isinstance(u, bool) for u in users)
            or len(set(users)) != len(users)
            or not all(0 <= u < inst.n_users and has[u] for u in users)
        ):
            return base, [f"[{i}].users: expected distinct users with an admissible pair"]
        if (
            not isinstance(lam, list)
            or len(lam) != inst.n_users
            or not all(_number(x) and math.isfinite(x) for x in lam)
        ):
            return base, [f"[{i}].multipliers: expected {inst.n_users} finite numbers"]
        by_set[frozenset(users)] = lam
    sets = _cloud_sets(profit, np.flatnonzero(has), base - forced - tol, claimed - forced - tol)
    if sets is None:
        return base, [f": more than {MAX_CHECKED_CLOUD_SETS:,} cloud sets to check"]
    for users in sets:
        cloud = forced + math.fsum(profit[list(users)].tolist())
        lam = by_set.get(frozenset(users))
        if lam is None:
            return base, [f": the cloud set {sorted(users)} ({cloud!r} bytes) is not refuted"]
        rest = recompute(
            inst, "load", np.asarray(lam, dtype=np.float64), grid, np.zeros(0, bool),
            knapsacks=kps, cloud=tuple(users),
        )  # fmt: skip
        if not rest > cloud + tol:
            return base, [
                f": the multipliers of {sorted(users)} bound its plans by {rest!r}, not above "
                f"its load {cloud!r}"
            ]
    return max(base, claimed), []


def _cloud_sets(
    profit: np.ndarray, users: np.ndarray, low: float, high: float
) -> list[tuple[int, ...]] | None:
    """Every set of ``users`` whose profit sum lies in [low, high) (None beyond
    ``MAX_CHECKED_CLOUD_SETS`` sets or ten times as many search steps). Iterative: a claim
    far above the bound must not exhaust the interpreter's recursion."""
    order = sorted(users.tolist(), key=lambda u: (profit[u], u))
    found: list[tuple[int, ...]] = []
    steps = 0
    pending: list[tuple[int, float, tuple[int, ...]]] = [(0, 0.0, ())]
    while pending:
        start, total, chosen = pending.pop()
        for k in range(start, len(order)):
            weight = total + float(profit[order[k]])
            if weight >= high:
                break  # heavier users follow
            steps += 1
            if steps > 10 * MAX_CHECKED_CLOUD_SETS:
                return None
            now = (*chosen, order[k])
            if weight >= low:
                found.append(now)
                if len(found) > MAX_CHECKED_CLOUD_SETS:
                    return None
            pending.append((k + 1, weight, now))
    return found


def tree_multipliers(table: object, n_users: int) -> tuple[list[np.ndarray], list[str]]:
    """A tree certificate's ``tree_multipliers``, read: each entry is a list of ``n_users``
    finite numbers, or ``{"base": j, "users": [u, ...], "values": [x, ...]}``, entry j (an
    earlier one) with those users' multipliers replaced (a child climbs a few rounds from
    its parent's multipliers and changes few of them: a tree of 3,865 lists of 200 took 12 MB
    in full). (The lists, problems)."""
    where = "tree_multipliers"
    if not isinstance(table, list):
        return [], [f"{where}: expected a list"]
    lams: list[np.ndarray] = []
    for i, entry in enumerate(table):
        if isinstance(entry, list):
            if len(entry) != n_users or not all(_number(x) and math.isfinite(x) for x in entry):
                return [], [f"{where}[{i}]: expected {n_users} finite numbers"]
            lams.append(np.asarray(entry, dtype=np.float64))
            continue
        base, users, values = (
            (entry.get("base"), entry.get("users"), entry.get("values"))
            if isinstance(entry, dict)
            else (None, None, None)
        )
        if not isinstance(base, int) or isinstance(base, bool) or not 0 <= base < i:
            return [], [f"{where}[{i}]: expected a list, or an earlier entry as its base"]
        if (
            not isinstance(users, list)
            or not isinstance(values, list)
            or len(users) != len(values)
            or not all(isinstance(u, int) and not isinstance(u, bool) for u in users)
            or not all(0 <= u < n_users for u in users)
            or len(set(users)) != len(users)
            or not all(_number(x) and math.isfinite(x) for x in values)
        ):
            return [], [
                f"{where}[{i}]: expected distinct users below {n_users} and as many finite values"
            ]
        lam = lams[base].copy()
        lam[users] = values
        lams.append(lam)
    return lams, []


def tree_bound(
    inst: Instance,
    part: dict,
    grid: float,
    served: np.ndarray,
    progress: Progress | None = None,
) -> tuple[float, list[str]]:
    """(The least bound over a tree certificate's leaves, problems). ``part["tree"]`` lists the
    tree's nodes in preorder (flat, so no file nests as deep as the tree): a branch
    ``{"user": u, "children": [h, ...]}`` (u a served user not yet placed, one child for every
    ES that admits u, in that order: together they cover every plan of the node) is followed
    by its children's subtrees; a leaf is ``{"multipliers": i}`` (its bound recomputed at
    ``part["tree_multipliers"][i]``, read by :func:`tree_multipliers`, with the path's users
    placed) or ``{"infeasible": true}``
    (the path's users alone overfill an ES, by the simulator's test fsum > capacity).
    ``progress(read, nodes)`` is called every ``PROGRESS_NODES`` nodes and at the end: a
    tree of thousands of nodes takes a minute."""
    lams, problems = tree_multipliers(part.get("tree_multipliers"), inst.n_users)
    if problems:
        return math.nan, problems
    tree = part.get("tree")
    if not isinstance(tree, list) or not tree:
        return math.nan, ["tree: expected a non-empty list of nodes"]
    knapsacks = _Knapsacks(inst, grid)
    ok, required = knapsacks.ok, knapsacks.required
    least = math.inf
    pending: list[dict[int, int]] = [{}]  # the placements of the subtrees still to read
    pos = 0
    while pending and not problems:
        forced = pending.pop()
        if pos == len(tree):
            problems.append("tree: ends before every branch has its children")
            break
        node, where = tree[pos], f"tree[{pos}]"
        pos += 1
        if progress is not None and pos % PROGRESS_NODES == 0:
            progress(pos, len(tree))
        if not isinstance(node, dict):
            problems.append(f"{where}: expected an object")
        elif "user" in node:
            u, children = node.get("user"), node.get("children")
            if not isinstance(u, int) or not 0 <= u < inst.n_users or not served[u] or u in forced:
                problems.append(f"{where}.user: {u!r} is not a served user left to place")
            elif not isinstance(children, list) or not all(isinstance(h, int) for h in children):
                problems.append(f"{where}.children: expected a list of ESs")
            elif children != np.flatnonzero(ok[u]).tolist():
                problems.append(
                    f"{where}.children: user {u}'s children must be its admissible ESs "
                    f"{np.flatnonzero(ok[u]).tolist()}, got {children}"
                )
            else:
                pending += [forced | {u: h} for h in reversed(children)]
        elif node.get("infeasible") is True:
            if not any(
                math.fsum(float(required[u, h]) for u, g in forced.items() if g == h)
                > float(inst.servers.capacity_hz[h])
                for h in set(forced.values())
            ):
                problems.append(f"{where}: its placed users fit every ES, not infeasible")
        elif isinstance(node.get("multipliers"), int) and 0 <= node["multipliers"] < len(lams):
            bound = recompute(
                inst, "migrations", lams[node["multipliers"]], grid, served, forced, knapsacks
            )
            least = min(least, bound)
        else:
            problems.append(f"{where}: expected a branch, an infeasible leaf or multipliers")
    if not problems and pos != len(tree):
        problems.append(f"tree: {len(tree) - pos} nodes after the last subtree")
    if progress is not None:
        progress(len(tree), len(tree))
    return least, problems


def _proves(stage: str, bound: float, value: float, tol: float) -> bool:
    if stage == "migrations":
        return math.ceil(bound - INTEGER_SLACK) >= value
    return bound >= value - tol


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
