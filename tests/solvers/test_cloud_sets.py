"""An overloaded load stage proven by its cloud sets (:mod:`.cloud_sets`): the enumeration
against itertools, proofs against brute force, and ``verify``'s own check of the entries.

The tiny instances are overloaded (capacities cut to 5-10 %) and run with
``overloaded_nodes=0``, so HiGHS's load stage does not prove them first: there the plan comes
from the knapsacks and the bound from the multipliers, a fraction of a user's load below it.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from bruteforce import brute_force, close, tiny_instance
from engine_method import as_json, engine

from dtasm_opt.core import simulator
from dtasm_opt.core.certificate import _cloud_sets
from dtasm_opt.core.generator import Scenario
from dtasm_opt.core.solution import judge
from dtasm_opt.core.verify import verify
from dtasm_opt.experiments.states import rollout_state
from dtasm_opt.models.step_problem import step_problem
from dtasm_opt.solvers.exact import cloud_sets as cloud_sets_module
from dtasm_opt.solvers.exact.cloud_sets import candidate_sets, prove_by_cloud_sets
from dtasm_opt.solvers.exact.highs_direct import solve_direct
from dtasm_opt.solvers.exact.milp_driver import SolveOptions

SETS = 64  # --cloud-sets: the proof is off by default

# (seed, users, servers) of tiny overloaded instances whose load stage the cloud sets prove:
# found by scanning seeds 0-59 at (6, 3); two by the certificate, two by HiGHS.
PROVEN = [(24, 6, 3), (28, 6, 3), (44, 6, 3), (54, 6, 3)]


def _subsets(load: np.ndarray, users: np.ndarray, low: float, high: float) -> list[tuple]:
    found = []
    for r in range(1, users.size + 1):
        for s in itertools.combinations(users.tolist(), r):
            total = float(load[list(s)].sum())
            if low <= total < high:
                found.append((total, tuple(sorted(s))))
    return [s for _, s in sorted(found)]


@pytest.mark.parametrize("seed", range(8))
def test_candidate_sets_are_every_set_in_the_window_lightest_first(seed: int) -> None:
    rng = np.random.default_rng(seed)
    load = rng.uniform(0.5, 1.1, size=10)
    users = np.sort(rng.choice(10, size=8, replace=False))
    low, high = sorted(rng.uniform(0.4, 2.6, size=2))
    want = _subsets(load, users, low, high)
    got = candidate_sets(load, users, low, high, limit=1000)
    assert got is not None
    assert [tuple(s.tolist()) for s in got] == want
    # verify's own enumeration finds the same sets
    theirs = _cloud_sets(load, users, low, high)
    assert theirs is not None
    assert sorted(tuple(sorted(s)) for s in theirs) == sorted(want)
    if len(want) > 1:  # a work limit: beyond it, nothing
        assert candidate_sets(load, users, low, high, limit=len(want) - 1) is None


@pytest.mark.parametrize("case", PROVEN, ids=lambda c: f"seed{c[0]}")
def test_cloud_sets_prove_what_brute_force_finds_and_verify_accepts(case) -> None:
    inst = tiny_instance(case[0], case[1], case[2], overloaded=True)
    ref = brute_force(inst)
    sol = judge(engine(overloaded_nodes=0, cloud_sets=SETS), inst)
    out = simulator.apply(inst, sol.action)
    assert sol.status == "optimal" and sol.info["cloud_sets"] >= 1
    assert close(out.cloud_load_bytes, ref.load)
    assert out.migrated == ref.migrations
    assert verify(inst, as_json(sol)) == []
    load = sol.info["certificate"]["load"]
    if sol.info["proof"] == "certificate":  # every lighter set refuted by its multipliers
        assert load["proves_optimal"] is True and load["cloud_sets"]
        assert close(load["bound_bytes"], ref.load)
    else:  # HiGHS refuted one: the plan is proven, the certificate only bounds it
        assert sol.info["proof"] == "cloud_sets" and sol.info["cloud_sets_by_highs"] >= 1
        assert load["proves_optimal"] is False and load["bound_bytes"] < ref.load
    # without the cloud sets (the default) the same stage stays unproven
    off = judge(engine(overloaded_nodes=0), inst)
    assert off.status != "optimal" and "cloud_sets" not in off.info


@pytest.fixture(scope="module")
def certified_by_sets():
    for case in PROVEN:
        inst = tiny_instance(case[0], case[1], case[2], overloaded=True)
        sol = judge(engine(overloaded_nodes=0, cloud_sets=SETS), inst)
        if "cloud_sets" in sol.info["certificate"]["load"]:
            return inst, as_json(sol)
    pytest.fail("no instance of PROVEN is proven by a certificate's cloud sets")


def test_a_missing_cloud_set_is_caught(certified_by_sets) -> None:
    inst, doc = certified_by_sets
    doc = copy.deepcopy(doc)
    doc["info"]["certificate"]["load"]["cloud_sets"].pop(0)
    assert any("is not refuted" in p for p in verify(inst, doc))


def test_a_cloud_set_with_weak_multipliers_is_caught(certified_by_sets) -> None:
    inst, doc = certified_by_sets
    doc = copy.deepcopy(doc)
    entry = doc["info"]["certificate"]["load"]["cloud_sets"][0]
    entry["multipliers"] = [-1e12] * inst.n_users  # a valid bound, far too low to refute
    assert any("not above its load" in p for p in verify(inst, doc))


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda e: e.update(users=[]), "distinct users"),
        (lambda e: e.update(users=[10**6]), "distinct users"),
        (lambda e: e.update(multipliers=[1.0]), "finite numbers"),
    ],
)
def test_a_malformed_cloud_set_is_caught(certified_by_sets, tamper, message: str) -> None:
    inst, doc = certified_by_sets
    doc = copy.deepcopy(doc)
    tamper(doc["info"]["certificate"]["load"]["cloud_sets"][0])
    assert any(message in p for p in verify(inst, doc))


def test_a_lighter_cloud_set_that_can_be_served_is_the_optimum() -> None:
    """From a worse plan (one more user in the cloud) and the forced load as the only bound,
    the enumeration reaches the optimum's cloud set, HiGHS serves everyone else, and that plan
    is returned as proven: brute force's optimum."""
    inst = tiny_instance(44, 6, 3, overloaded=True)
    ref = brute_force(inst)
    problem = step_problem(inst)
    p = problem.pairs
    sol = judge(engine(overloaded_nodes=0, cloud_sets=SETS), inst)
    chosen = sol.action[p.user] == p.server
    served = np.unique(p.user[chosen])
    lightest = served[np.argmin(problem.load_bytes[served])]
    worse = chosen & (p.user != lightest)
    assert problem.cloud_load_bytes(worse) > ref.load
    proof = prove_by_cloud_sets(problem, worse, problem.forced_cloud_bytes, None, sets=64)
    assert proof is not None and proof.proven and proof.info["cloud_set_plan"]
    assert close(problem.cloud_load_bytes(proof.plan), ref.load)
    assert problem.fits(proof.plan).all()
    assert close(proof.bound_bytes, ref.load)


def test_an_undecided_set_stops_the_search_and_lifts_the_bound(monkeypatch) -> None:
    """Where HiGHS decides nothing (its node limit), the first such set ends the search: the
    stage stays open, its bound rises to that set's load, below the optimum, and the
    certificate claims no more than its entries refute."""
    inst = tiny_instance(44, 6, 3, overloaded=True)
    ref = brute_force(inst)
    before = judge(engine(overloaded_nodes=0), inst)  # the default: no cloud sets
    monkeypatch.setattr(cloud_sets_module, "_solve", lambda *args, **kw: ("limit", None))
    sol = judge(engine(overloaded_nodes=0, cloud_sets=SETS), inst)
    assert sol.status != "optimal" and sol.info["cloud_sets_by_highs"] == 0
    assert before.bound_bytes < sol.bound_bytes <= ref.load * (1 + 1e-12)
    assert verify(inst, as_json(sol)) == []


def test_a_later_rollout_state_is_proven_and_highs_agrees() -> None:
    """Step 4 of a MILP-greedy rollout with 80 users on 3 ESs (the tree tests' open load
    stage): the engine without HiGHS's load stage leaves it open; with the cloud sets it is
    proven, ``verify`` accepts it, and plain HiGHS (no limit but the clock) proves the same
    cloud load."""
    inst = rollout_state(Scenario(users=80, servers=3), 1, 4)
    common = dict(time_limit_s=60.0, node_limit=1, overloaded_nodes=0, second_stage="none")
    assert judge(engine(**common), inst).status != "optimal"
    sol = judge(engine(**common, cloud_sets=SETS), inst)
    assert sol.status == "optimal" and sol.info["cloud_sets"] >= 1
    assert verify(inst, as_json(sol)) == []
    ref = solve_direct(inst, SolveOptions(time_limit_s=120.0, second_stage="none"))
    assert ref.status == "optimal"
    assert close(sol.cloud_load_bytes, simulator.apply(inst, ref.action).cloud_load_bytes)


def test_solve_and_verify_on_the_command_line(tmp_path, capsys) -> None:
    """`solve --cloud-sets N` writes the proof; `verify` says what it recomputed; a negative
    N is refused with exit 2 and no file."""
    from dtasm_opt.core.files import dumps
    from dtasm_opt.solve import main as solve_main
    from dtasm_opt.verify import main as verify_main

    inst = tiny_instance(28, 6, 3, overloaded=True)
    path, out = tmp_path / "inst.json", tmp_path / "sol.json"
    path.write_text(dumps(inst.to_dict()))
    args = [str(path), "--method", "lagrangian", "--overloaded-nodes", "0"]
    assert solve_main([*args, "--cloud-sets", "64", "--out", str(out)]) == 0
    capsys.readouterr()
    assert verify_main([str(path), str(out)]) == 0
    assert "1 refuted cloud set)" in capsys.readouterr().err  # verify reports on stderr
    bad = tmp_path / "bad.json"
    assert solve_main([*args, "--cloud-sets", "-1", "--out", str(bad)]) == 2
    assert "--cloud-sets" in capsys.readouterr().err and not bad.exists()


def test_a_claim_far_above_the_bound_is_refused_not_crashed(certified_by_sets) -> None:
    """A cloud-set claim whose window would hold every subset (a bound of 1e12 bytes) ends
    in one problem naming the limit, not in a deep recursion or a long wait."""
    inst, doc = certified_by_sets
    doc = copy.deepcopy(doc)
    many = np.random.default_rng(0).uniform(1.0, 2.0, size=2_000)  # 2,000 tiny 'users'
    assert _cloud_sets(many, np.arange(2_000), 0.0, 1e12) is None
    doc["info"]["certificate"]["load"]["bound_bytes"] = 1e12
    doc["bound_bytes"] = 1e12
    assert verify(inst, doc) != []
