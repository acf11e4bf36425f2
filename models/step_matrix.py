"""The per-step MILP of :mod:`.step_problem` as CSR arrays, ready for HiGHS's ``passModel``.

The same model as the Pyomo builder (:mod:`.step_milp`), column for column (x[k] per
admissible pair k) and row for row (C1 per user that has a pair, C4 per ES): built from numpy
in a few milliseconds where Pyomo's build takes a good part of a second at (1000, 16), which
matters for rollouts of thousands of steps.
"""

from __future__ import annotations

import numpy as np

from dtasm_opt.models.step_problem import StepProblem


def step_matrix(problem: StepProblem) -> dict:
    """The stage-1 model as CSR arrays: C1 rows (users with a pair), then C4 rows (all ESs)."""
    p = problem.pairs
    k = p.n_pairs
    per_user = np.bincount(p.user, minlength=problem.n_users)
    per_user = per_user[per_user > 0]  # pairs are sorted by user: C1 rows are consecutive runs
    by_server = np.argsort(p.server, kind="stable")
    per_server = np.bincount(p.server, minlength=problem.n_servers)
    n_c1 = per_user.shape[0]
    start = np.concatenate(([0], np.cumsum(per_user), k + np.cumsum(per_server)))
    return {
        "col_cost": -problem.pair_load_bytes,
        "offset": problem.total_load_bytes,
        "row_lower": np.full(n_c1 + problem.n_servers, -np.inf),
        "row_upper": np.concatenate((np.ones(n_c1), problem.model_capacity_hz)),
        "a_start": start.astype(np.int32),
        "a_index": np.concatenate((np.arange(k), by_server)).astype(np.int32),
        "a_value": np.concatenate((np.ones(k), p.required_hz[by_server])),
        "n_c1": n_c1,
    }
