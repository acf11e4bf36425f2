"""The engine's tree search on the tie-break's bound (:mod:`solvers.exact.lagrangian_tree`):
it closes at the brute-force optimum from a weak start, its tree is a certificate that
``verify`` walks and recomputes leaf by leaf, a tampered tree is caught, and it repeats itself.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from bruteforce import close, plans_serving
from engine_method import as_json, engine, tiny_tie_breaks
from hypothesis import given, settings
from hypothesis import strategies as st

from dtasm_opt.core import certificate, simulator
from dtasm_opt.core.certificate import tree_bound, tree_multipliers
from dtasm_opt.core.generator import Scenario
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.solution import judge
from dtasm_opt.core.verify import verify
from dtasm_opt.experiments.states import rollout_state
from dtasm_opt.solvers.exact.highs_direct import solve_direct
from dtasm_opt.solvers.exact.lagrangian_tree import branch_and_bound, compact_multipliers
from dtasm_opt.solvers.exact.milp_driver import SolveOptions


@pytest.fixture(scope="module")
def one_short() -> Instance:
    """A (100, 4) state where HiGHS stopped at its root (--node-limit 1) leaves an incumbent
    the ascent's bound cannot reach but proves one below."""
    return rollout_state(Scenario(users=100, servers=4), 1, 3)


@pytest.fixture(scope="module")
def by_tree(one_short: Instance):
    """The engine's solution of that state with its default tree search (solved once: the
    tests below read it, and tamper with copies)."""
    return judge(engine(time_limit_s=60.0, node_limit=1), one_short)


def _agrees_with_plain_highs(inst: Instance, sol) -> None:
    ref = solve_direct(inst, SolveOptions())
    assert ref.info["stage2_status"] == "optimal"
    assert sol.metrics["migrated"] == simulator.apply(inst, ref.action).migrated
    assert close(sol.cloud_load_bytes, simulator.apply(inst, ref.action).cloud_load_bytes)
    assert verify(inst, as_json(sol)) == []


def test_one_below_search_proves_by_fixing(one_short: Instance) -> None:
    """Without the tree search: on the pairs that reduced-cost fixing leaves HiGHS finds
    nothing better, so the engine proves the tie-break by fixing (no certificate). Plain
    HiGHS with no limit agrees."""
    sol = judge(engine(time_limit_s=60.0, node_limit=1, tree_rounds=0), one_short)
    assert sol.info["stage2_proof"] == "fixing", sol.info
    assert sol.info["stage2_highs_status"] == "work_limit"
    assert sol.info["stage2_status"] == "optimal" and sol.info["fixed_pairs"] > 0
    assert "migrations" not in sol.info.get("certificate", {})  # fixing gives no certificate
    assert "tree_status" not in sol.info
    _agrees_with_plain_highs(one_short, sol)


def test_the_fixing_search_is_a_named_work_limit(one_short: Instance) -> None:
    """``fixed_nodes`` is that search's HiGHS budget: naming its default gives the same
    solution as above; 0 runs no search after fixing, so the tie-break stays at HiGHS's own
    stage 2 (stopped at its node limit) and is not proven by fixing."""
    from dtasm_opt.core.limits import DEFAULT_FIXED_NODES

    common = dict(time_limit_s=60.0, node_limit=1, tree_rounds=0)
    named = judge(engine(**common, fixed_nodes=DEFAULT_FIXED_NODES), one_short)
    assert named.info["stage2_proof"] == "fixing" and named.info["fixed_pairs"] > 0
    none = judge(engine(**common, fixed_nodes=0), one_short)
    assert "fixed_pairs" not in none.info and none.info.get("stage2_proof") != "fixing"
    assert none.info["stage2_status"] == "work_limit", none.info
    assert none.metrics["migrated"] >= named.metrics["migrated"]
    assert verify(one_short, as_json(none)) == []


def test_the_tree_search_proves_it_with_a_certificate(one_short: Instance, by_tree) -> None:
    """By default the tree search settles the same state, and its tree is the certificate
    that verify re-checks leaf by leaf (the root's bound alone proves only one below)."""
    sol = by_tree
    assert sol.info["stage2_proof"] == "tree", sol.info
    assert sol.info["tree_status"] == "optimal" and sol.info["tree_nodes"] >= 2
    mig = sol.info["certificate"]["migrations"]
    assert "tree" in mig and mig["tree_multipliers"]
    assert math.ceil(mig["bound"] - 1e-6) >= sol.metrics["migrated"]
    _agrees_with_plain_highs(one_short, sol)


def _first_branch(tree: list[dict]) -> int:
    return next(i for i, node in enumerate(tree) if len(node.get("children", [])) >= 2)


def _drop_child(tree: list[dict]) -> None:
    tree[_first_branch(tree)]["children"].pop()


def _false_infeasible(tree: list[dict]) -> None:
    i = _first_branch(tree)
    tree[i + 1 :] = [{"infeasible": True}, *tree[i + 1 :]]  # a leaf too many, first of all


def _bad_user(tree: list[dict]) -> None:
    tree[_first_branch(tree)]["user"] = -1


def _bad_index(tree: list[dict]) -> None:
    leaf = next(i for i, node in enumerate(tree) if "multipliers" in node)
    tree[leaf] = {"multipliers": 10**6}


def _truncated(tree: list[dict]) -> None:
    del tree[-1]


@pytest.mark.parametrize(
    "tamper, message",
    [
        # a branch that leaves out one of its user's ESs covers only part of the plans
        (_drop_child, "must be its admissible ESs"),
        # an infeasible leaf where its users fit (and, after it, one node too many)
        (_false_infeasible, "not infeasible"),
        (_bad_user, "not a served user"),
        (_bad_index, "multipliers"),
        (_truncated, "ends before"),
    ],
)
def test_a_tampered_tree_is_caught(one_short: Instance, by_tree, tamper, message: str) -> None:
    doc = copy.deepcopy(as_json(by_tree))
    tamper(doc["info"]["certificate"]["migrations"]["tree"])
    problems = verify(one_short, doc)
    assert any(message in p for p in problems), problems


def test_zeroed_tree_multipliers_prove_nothing(one_short: Instance, by_tree) -> None:
    """Valid multipliers that bound too low: verify's recomputed leaves no longer reach the
    claim."""
    doc = copy.deepcopy(as_json(by_tree))
    mig = doc["info"]["certificate"]["migrations"]
    mig["tree_multipliers"] = [[0.0] * one_short.n_users for _ in mig["tree_multipliers"]]
    problems = verify(one_short, doc)
    assert any("give only" in p for p in problems), problems


def test_shared_knapsacks_change_no_bound(one_short: Instance, by_tree, monkeypatch) -> None:
    """verify solves each distinct knapsack of a tree once: the least bound over the leaves
    is the one that solving every leaf's knapsacks afresh gives, and the tree does share."""
    doc = as_json(by_tree)
    cert = doc["info"]["certificate"]
    part = cert["migrations"]
    grid = float(part.get("grid_hz", cert["grid_hz"]))
    served = simulator.apply(one_short, by_tree.action).final_server != one_short.cloud
    solved: list[tuple] = []
    most = certificate._most

    def counted(units: list[int], values: list[float], cells: int) -> float:
        solved.append((tuple(units), tuple(values), cells))
        return most(units, values, cells)

    monkeypatch.setattr(certificate, "_most", counted)
    shared, problems = tree_bound(one_short, part, grid, served)
    assert problems == []
    n_shared = len(solved)
    monkeypatch.setattr(
        certificate._Knapsacks,
        "most",
        lambda self, h, users, values, used: counted(
            self.units[users, h].tolist(), values.tolist(), self.cells[h] - used
        ),
    )
    fresh, problems = tree_bound(one_short, part, grid, served)
    assert problems == [] and fresh == shared
    leaves = sum("multipliers" in node for node in part["tree"])
    assert n_shared == len(set(solved)) < leaves * one_short.n_servers == len(solved) - n_shared


def test_a_tree_check_reports_its_progress(one_short: Instance, by_tree, monkeypatch) -> None:
    """verify's progress callback follows the tree node by node to its end."""
    monkeypatch.setattr(certificate, "PROGRESS_NODES", 2)
    calls: list[tuple[int, int]] = []
    assert verify(one_short, as_json(by_tree), progress=lambda *c: calls.append(c)) == []
    nodes = len(by_tree.info["certificate"]["migrations"]["tree"])
    assert calls[-1] == (nodes, nodes) and len(calls) == nodes // 2 + 1
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@settings(max_examples=60)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), users=st.integers(1, 12))
def test_compact_multipliers_read_back_bit_for_bit(seed: int, n: int, users: int) -> None:
    """A table whose rows copy earlier rows with a few changes (as a tree's climbs do) is
    written as changes where they are few, and reads back exactly (the tree keeps its
    entries as arrays; a full entry is written as a plain list)."""
    rng = np.random.default_rng(seed)
    table: list[np.ndarray] = []
    for i in range(n):
        row = table[int(rng.integers(i))] if i and rng.random() < 0.8 else None
        if row is None:
            row = rng.normal(size=users)
        else:
            row = row.copy()
            row[rng.integers(users, size=int(rng.integers(0, 3)))] = rng.normal()
        table.append(row)
    written = json.loads(json.dumps(compact_multipliers(table)))
    read, problems = tree_multipliers(written, users)
    assert problems == [] and len(read) == n
    assert all(np.array_equal(a, b) for a, b in zip(read, np.asarray(table), strict=True))
    for entry, row in zip(written, table, strict=True):
        if isinstance(entry, dict):
            assert entry["base"] < len(table) and 2 * len(entry["users"]) < users
        else:
            assert entry == row.tolist()
    assert compact_multipliers([]) == [] and tree_multipliers([], users) == ([], [])


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"base": 1, "users": [0], "values": [1.0]}, "earlier entry"),  # itself
        ({"base": 5, "users": [0], "values": [1.0]}, "earlier entry"),  # a later one
        ({"base": True, "users": [0], "values": [1.0]}, "earlier entry"),
        ({"base": 0, "users": [0, 0], "values": [1.0, 2.0]}, "distinct users"),
        ({"base": 0, "users": [3], "values": [1.0]}, "distinct users"),  # beyond U = 3
        ({"base": 0, "users": [0, 1], "values": [1.0]}, "distinct users"),
        ({"base": 0, "users": [0], "values": [math.inf]}, "distinct users"),
        ([1.0, 2.0], "3 finite numbers"),
        ("0", "earlier entry"),
    ],
)
def test_a_bad_compact_entry_is_named(entry, message: str) -> None:
    lams, problems = tree_multipliers([[0.0, 1.0, 2.0], entry], 3)
    assert lams == [] and len(problems) == 1
    assert problems[0].startswith("tree_multipliers[1]") and message in problems[0]


def test_the_engine_writes_its_tree_compact(by_tree) -> None:
    """The engine's certificate names earlier entries where a climb changed few multipliers
    (and verify reads it: the tests above)."""
    table = by_tree.info["certificate"]["migrations"]["tree_multipliers"]
    assert len(table) >= 2 and any(isinstance(entry, dict) for entry in table)


def _fewest_migrations(problem, served: np.ndarray) -> float:
    """Brute force over every placement of the served users on their pairs (the migrations
    stage's own feasible set): the fewest migrations of a plan that fits every ES."""
    pair_cost, cloud_cost = problem.second_stage_costs("migrations")
    const = float(cloud_cost[~served].sum())
    return min(
        (const + float(pair_cost[plan].sum()) for plan in plans_serving(problem, served)),
        default=math.inf,
    )


def test_the_tree_search_equals_brute_force_from_a_weak_start() -> None:
    """From zero multipliers, two rounds a node and stage 1's plan (no tie-break) as the
    incumbent, so that the tree must branch and improve: on 240 tiny instances of every size
    and both families it closes at the brute-force optimum, and verify's own knapsacks
    re-check every leaf of its tree."""
    branched = improved = 0
    for seed, inst, problem, chosen, dual in tiny_tie_breaks(240):
        served = dual.rows
        start = dual.value(chosen)
        tree = branch_and_bound(
            dual,
            np.zeros(inst.n_users),
            chosen,
            node_limit=10_000,
            round_limit=100_000,
            node_rounds=2,
        )
        assert tree.proven, seed
        assert tree.incumbent == _fewest_migrations(problem, served), seed
        assert problem.fits(tree.plan).all() and dual.value(tree.plan) == tree.incumbent
        # preorder, flat: a certificate file never nests as deep as its tree
        for node in tree.tree:
            assert set(node) <= {"user", "children", "multipliers", "infeasible"}
            assert all(isinstance(h, int) for h in node.get("children", []))
        part = {"tree": tree.tree, "tree_multipliers": compact_multipliers(tree.multipliers)}
        least, problems = tree_bound(inst, part, dual.grid_hz, served)
        assert problems == [], (seed, problems)
        assert math.ceil(least - 1e-6) >= tree.incumbent, seed
        assert least >= tree.bound - 1e-9, seed  # verify's leaves bound at least as high
        branched += tree.nodes > 1
        improved += tree.incumbent < start
    assert branched >= 30 and improved >= 10, (branched, improved)


def test_the_tree_search_repeats_itself(one_short: Instance, by_tree) -> None:
    a = by_tree
    b = judge(engine(time_limit_s=60.0, node_limit=1), one_short)
    assert np.array_equal(a.action, b.action)
    assert a.info["certificate"] == b.info["certificate"]
    assert (a.info["tree_nodes"], a.info["tree_rounds"]) == (
        b.info["tree_nodes"],
        b.info["tree_rounds"],
    )


def test_the_clock_stops_the_tree_only_as_a_safety_net() -> None:
    """A spent clock stops the search at its root and says so (``timed_out``, not proven, the
    start plan kept); a clock that does not bind changes nothing, node for node."""
    checked = 0
    for _seed, _inst, _problem, chosen, dual in tiny_tie_breaks(40):
        args = (dual, np.zeros(dual.rows.size), chosen)
        kw = dict(node_limit=10_000, round_limit=100_000, node_rounds=2)
        free = branch_and_bound(*args, **kw)
        if free.nodes < 2:
            continue
        spent = branch_and_bound(*args, **kw, time_limit_s=0.0)
        assert spent.timed_out and not spent.proven and spent.nodes == 0
        assert spent.incumbent == dual.value(chosen) and spent.tree is None
        ample = branch_and_bound(*args, **kw, time_limit_s=600.0)
        assert not ample.timed_out and not free.timed_out and ample.proven
        assert (ample.nodes, ample.rounds, ample.incumbent) == (free.nodes, free.rounds,
                                                                free.incumbent)  # fmt: skip
        assert ample.tree == free.tree
        checked += 1
    assert checked >= 5, checked


def test_a_spent_tie_break_clock_is_reported(one_short: Instance) -> None:
    """With the tie-break stage's clock spent, the tree stops at once and the solution says
    the clock stopped it, not the work (the state that the default tree settles above)."""
    sol = judge(engine(time_limit_s=60.0, node_limit=1, second_stage_time_limit_s=1e-6),
                one_short)  # fmt: skip
    assert (sol.info["tree_status"], sol.info["tree_nodes"]) == ("time_limit", 0), sol.info
    assert sol.info["stage2_status"] == "time_limit"
    assert "migrations" not in sol.info.get("certificate", {})  # no proof of the tie-break
    assert verify(one_short, as_json(sol)) == []


def test_the_tree_budget_is_smaller_only_where_the_load_stage_is_open() -> None:
    """The budget rule itself: ``tree_rounds`` where the load stage is proven, at most
    ``open_load_tree_rounds`` where it is not, the node cap from the rounds; the defaults
    are the ones the help states."""
    from dtasm_opt.solvers.exact import tie_break as tb

    default = engine().tie_break
    assert default.tree_budget(True) == (tb.TREE_ROUNDS, tb.TREE_ROUNDS // tb.ROUNDS_PER_NODE)
    assert default.tree_budget(False) == (tb.OPEN_LOAD_TREE_ROUNDS, tb.TREE_NODES)
    assert tb.TREE_ROUNDS > tb.OPEN_LOAD_TREE_ROUNDS
    small = engine(tree_rounds=1_500).tie_break  # an old study's budget: the same on every step
    assert small.tree_budget(True) == small.tree_budget(False) == (1_500, tb.TREE_NODES)
    off = engine(open_load_tree_rounds=0).tie_break
    assert off.tree_budget(False)[0] == 0 and off.tree_budget(True)[0] == tb.TREE_ROUNDS


def test_a_named_node_cap_is_the_cap_and_naming_the_default_changes_nothing() -> None:
    """``tree_nodes`` caps the tree where the load stage is proven; where it is open the cap
    is at most the default from that step's rounds. Naming the default cap (as a study's
    spec does, to tell its cells from another cap's) gives every step the same budget."""
    from dtasm_opt.core.limits import DEFAULT_TREE_NODES
    from dtasm_opt.solvers.exact import tie_break as tb

    default = engine().tie_break
    named = engine(tree_nodes=DEFAULT_TREE_NODES).tie_break
    for load_proven in (True, False):
        assert named.tree_budget(load_proven) == default.tree_budget(load_proven)
    assert default.tree_budget(True)[1] == DEFAULT_TREE_NODES == 50_000
    old_cap = engine(tree_nodes=20_000).tie_break  # the cap the shipped studies ran
    assert old_cap.tree_budget(True) == (tb.TREE_ROUNDS, 20_000)
    assert old_cap.tree_budget(False) == default.tree_budget(False)  # 5,000 < 20,000
    tiny = engine(tree_nodes=7).tie_break
    assert tiny.tree_budget(True)[1] == tiny.tree_budget(False)[1] == 7


def test_the_node_cap_stops_the_tree(one_short: Instance, by_tree) -> None:
    """On the state the default tree proves in several nodes, a cap of one node stops it at
    that node (work_limit, the same answer every run), and a cap of 0 runs no tree at all."""
    assert by_tree.info["tree_nodes"] >= 2
    capped = judge(engine(time_limit_s=60.0, node_limit=1, tree_nodes=1), one_short)
    assert (capped.info["tree_status"], capped.info["tree_nodes"]) == ("work_limit", 1)
    assert capped.info["tree_rounds"] < by_tree.info["tree_rounds"]
    assert capped.info.get("stage2_proof") != "tree"
    assert verify(one_short, as_json(capped)) == []
    none = judge(engine(time_limit_s=60.0, node_limit=1, tree_nodes=0), one_short)
    assert "tree_status" not in none.info


def test_an_open_load_stage_gets_the_smaller_tree(one_short: Instance) -> None:
    """On a step whose load stage stays open (80 users on 3 ESs, HiGHS's load stage not run),
    the tree needs about 300 rounds: with open_load_tree_rounds 300 it proves the tie-break,
    with 100 it stops at that limit although tree_rounds allows 2,000. On one_short, whose
    load stage is proven, open_load_tree_rounds 1 takes nothing from the tree."""
    inst = rollout_state(Scenario(users=80, servers=3), 1, 4)
    common = dict(time_limit_s=60.0, node_limit=1, overloaded_nodes=0, tree_rounds=2_000)
    enough = judge(engine(**common, open_load_tree_rounds=300), inst)
    assert enough.status != "optimal"  # the load stage is open
    assert enough.info["tree_budget"] == 300 and enough.info["tree_status"] == "optimal"
    short = judge(engine(**common, open_load_tree_rounds=100), inst)
    assert short.info["tree_budget"] == 100 and short.info["tree_status"] == "work_limit"
    assert short.info["tree_rounds"] < enough.info["tree_rounds"]  # stopped at ~100 (a node's
    # rounds are checked as the node ends)
    proven = judge(engine(time_limit_s=60.0, node_limit=1, open_load_tree_rounds=1), one_short)
    assert proven.status == "optimal"
    assert proven.info["tree_budget"] == engine().tie_break.tree_rounds
    assert proven.info["stage2_proof"] == "tree"
