"""An overloaded load stage proven by its cloud sets: every lighter cloud refuted one by one.

Where not everyone can be served, the Dantzig-Wolfe bound stays a fraction of one user's load
below the best plan (docs/design.md §9), so neither it nor a tree on it proves the plan. But
the cloud load takes only the values of sums of user loads (0.54-1.07 MB each at (200, 8)).
Where the plan's cloud holds one or two users, few sets of users weigh between the proven
bound and the plan: each of them is the whole cloud of some plan only if everyone else can be
served. So the plan is optimal once each such set S is refuted, lightest first:

1. by the Lagrangian bound of the stage with S in the cloud (S's pairs removed), at the LP
   duals of that problem: above load(S), no plan has exactly S in the cloud. Its multipliers
   go into the load certificate (``cloud_sets``), where ``verify`` enumerates the sets again
   and recomputes each bound with its own knapsacks;
2. else by HiGHS on "everyone but S served", stopped at its first plan within
   ``CLOUD_SET_NODES`` nodes: infeasible refutes S (HiGHS's proof, not in the certificate);
   a plan serves everyone but S, so it is optimal (every lighter set is refuted); at its
   limit the search stops there, and the bound is lifted to load(S).

Measured on five overloaded (200, 8) states of rollouts (docs/exact.md, "The overloaded
load stage"): most sets fall at once (the LP of "everyone else served" is infeasible), but
on each state HiGHS left a set undecided (the two checked further stayed so at 30,000 and
100,000 nodes and under CP-SAT for 120-300 s), so it proved none of them and lifted one
bound. It proves tiny and
small overloaded instances, some with a certificate, hence an option (``--cloud-sets``), off
by default. The enumeration is a work limit: at most ``sets`` candidate sets and
``VISIT_FACTOR`` times as many search nodes, else nothing is tried (at U >= 240 the cloud
holds 20 users or more).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from dtasm_opt.models.step_problem import StepProblem
from dtasm_opt.solvers.exact.lagrangian import load_dual, lp_multipliers
from dtasm_opt.solvers.exact.restricted_mip import _solve

# HiGHS's nodes on "everyone but S served" where the bound does not refute S: the sets it
# refuted on the three measured states fell in 0.01-9.9 s; the undecided ones stayed so at
# 2,000-100,000 nodes.
CLOUD_SET_NODES = 1_000
# The enumeration's own work limit: search nodes per candidate set allowed.
VISIT_FACTOR = 64
# A refutation by the bound needs this margin over load(S), relative to the total load, so
# that ``verify``'s recomputation (its own knapsacks, its tolerance of 1e-12 of the total load
# and 1e-9 relative) accepts it too.
REFUTE_MARGIN = 1e-9


@dataclass(frozen=True)
class CloudSetProof:
    """What the cloud sets gave: the plan (better where HiGHS served everyone but a lighter
    set), whether it is proven, the proven bound (HiGHS's refutations included), the bound the
    certificate's entries carry alone, and those entries."""

    plan: np.ndarray
    proven: bool
    bound_bytes: float
    certified_bytes: float
    entries: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def candidate_sets(
    load: np.ndarray, users: np.ndarray, low: float, high: float, limit: int
) -> list[np.ndarray] | None:
    """Every set S of ``users`` with low <= load(S) < high, lightest first (ties by their
    users), or None where there are more than ``limit`` or the search passes
    ``VISIT_FACTOR * limit`` nodes (a work limit)."""
    order = users[np.lexsort((users, load[users]))]
    weights = load[order]
    found: list[tuple[float, tuple[int, ...]]] = []
    stack: list[tuple[int, float, tuple[int, ...]]] = [(0, 0.0, ())]
    visits = 0
    while stack:
        start, total, chosen = stack.pop()
        if chosen and total >= low:
            found.append((total, chosen))
            if len(found) > limit:
                return None
        for k in range(start, order.size):
            if total + weights[k] >= high:
                break  # the rest are heavier still
            visits += 1
            if visits > VISIT_FACTOR * max(limit, 1):
                return None
            stack.append((k + 1, total + float(weights[k]), (*chosen, int(order[k]))))
    found.sort()
    return [np.array(sorted(s), dtype=np.int64) for _, s in found]


def prove_by_cloud_sets(
    problem: StepProblem, chosen: np.ndarray, bound: float, certified: float | None, sets: int
) -> CloudSetProof | None:
    """The cloud-set proof of ``chosen`` (a plan, mask over the pairs) from a proven lower
    bound ``bound`` on the cloud load; ``certified`` is the load certificate's own bound (the
    window starts there where it exists, so that its entries cover every set). None where the
    window holds more than ``sets`` sets or nothing lies in it."""
    t0 = time.perf_counter()
    p = problem.pairs
    forced = problem.forced_cloud_bytes
    value = problem.cloud_load_bytes(chosen)
    start = bound if certified is None else min(bound, certified)
    margin = REFUTE_MARGIN * max(problem.total_load_bytes, 1.0)
    users = np.unique(p.user)
    # Sets lighter than the plan's cloud (up to 1e-12 of it, inside verify's tolerance, so
    # that its window is never wider at the top); from a margin below the bound, since a
    # bound computed in floats may sit a hair above a set's exact load.
    high = value - forced - 1e-12 * max(value, 1.0)
    window = candidate_sets(problem.load_bytes, users, start - forced - margin, high, sets)
    if not window:
        return None
    entries: list[dict] = []
    by_bound = by_highs = 0
    plan, proven, better = chosen, True, False
    gap = None  # the load of the first set the bound does not refute: the certificate's reach
    lifted = value  # the proven bound: the load of the first set left undecided, if any
    migrates = p.migrates.astype(np.float64)
    for s in window:
        cloud = forced + float(problem.load_bytes[s].sum())
        rest = load_dual(problem, cloud=s)  # s held in the cloud
        keep = rest.pair_ids  # the pairs of everyone but s
        lam = lp_multipliers(rest)
        rest_bound, _ = rest.evaluate(lam)
        if rest_bound > cloud + margin:
            by_bound += 1
            if gap is None:  # entries past the first gap could not extend the certificate
                entries.append({"users": s.tolist(), "multipliers": lam.tolist()})
            continue
        if gap is None:
            gap = cloud
        status, x = _solve(
            migrates[keep], p.user[keep], p.server[keep],
            p.required_hz[keep], np.setdiff1d(users, s), problem.model_capacity_hz,
            CLOUD_SET_NODES, first=True,
        )  # fmt: skip
        if status == "infeasible":
            by_highs += 1
            continue
        if status == "found":
            full = np.zeros(p.n_pairs, dtype=bool)
            full[keep[x]] = True
            found = problem.cloud_load_bytes(full)
            if problem.fits(full).all() and problem.same_load(found, cloud):
                # everyone but s served, every lighter set refuted: the optimum
                plan, value, better = full, found, True
                lifted = value
                break
        proven, lifted = False, cloud  # undecided: the bound reaches this set, no further
        break
    info = {
        "cloud_sets": len(window),
        "cloud_sets_by_bound": by_bound,
        "cloud_sets_by_highs": by_highs,
        "cloud_set_plan": better,  # HiGHS served everyone but a lighter set: the optimum
        "cloud_sets_s": time.perf_counter() - t0,
    }
    return CloudSetProof(
        plan=plan,
        proven=proven,
        bound_bytes=min(lifted, value),
        certified_bytes=min(value if gap is None else gap, lifted, value),
        entries=entries,
        info=info,
    )
