"""The per-step MILP (Pyomo and direct highspy builds) and the ``milp`` method."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import highspy
import numpy as np
import pytest
from families import moderate_instance

from dtasm_opt.core import simulator
from dtasm_opt.core.generator import Scenario, generate_instance
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.errors import InputError
from dtasm_opt.models.step_milp import build_step_model, write_model
from dtasm_opt.models.step_problem import step_problem
from dtasm_opt.solvers.exact.highs_direct import solve_direct, solve_scaled
from dtasm_opt.solvers.exact.highs_pyomo import solve_pyomo
from dtasm_opt.solvers.exact.highs_runtime import solver_output
from dtasm_opt.solvers.exact.milp import make_milp
from dtasm_opt.solvers.exact.milp_driver import (
    SolveOptions,
    StageRun,
    greedy_assignment,
    solve_step,
)
from dtasm_opt.solvers.registry import make_method

CONTRACT = Path(__file__).resolve().parents[1] / "data" / "contract"
BASELINES = ("womig-stable", "womig-dynamic", "random", "nearest", "danearest")


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)


def assert_consistent(inst: Instance, decision) -> simulator.StepOutcome:
    """The simulator reproduces the MILP's load; no ES is overfilled; the bound is below."""
    out = simulator.apply(inst, decision.action)
    assert close(out.cloud_load_bytes, decision.info["cloud_load_bytes"])
    assert "repaired_users" not in decision.info
    assert (out.outcome[decision.action != inst.cloud] == simulator.ADMITTED).all()
    assert decision.bound_bytes <= out.cloud_load_bytes
    return out


# ---- contract vectors ---------------------------------------------------------------------


def contract_cases() -> list[Path]:
    return sorted(CONTRACT.glob("case-*.json")) if CONTRACT.is_dir() else []


@pytest.mark.skipif(not contract_cases(), reason="tests/data/contract/ is not there")
@pytest.mark.parametrize("path", contract_cases(), ids=lambda p: p.stem)
def test_contract_optimum(path: Path) -> None:
    doc = json.loads(path.read_text())
    inst = Instance.from_dict(doc["instance"])
    for solve in (solve_direct, solve_pyomo, solve_scaled):
        decision = solve(inst)
        out = assert_consistent(inst, decision)
        assert decision.status == "optimal"
        assert close(out.cloud_load_bytes, doc["optimal_cloud_load_bytes"])


# ---- Pyomo vs direct ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_scaled_and_direct_agree(seed: int) -> None:
    """The scaled matrix (objective in MB, capacity rows in units of capacity) has the same
    optimum: equal loads, and each proven bound below the other's incumbent."""
    inst = moderate_instance(seed)
    opts = SolveOptions(second_stage="migrations", time_limit_s=30)
    a, b = solve_direct(inst, opts), solve_scaled(inst, opts)
    assert a.status == b.status == "optimal"
    assert b.info["backend"] == "highs-scaled"
    out_a, out_b = assert_consistent(inst, a), assert_consistent(inst, b)
    assert close(out_a.cloud_load_bytes, out_b.cloud_load_bytes)
    assert out_a.migrated == out_b.migrated  # the tie-break's optimum too


@pytest.mark.parametrize("seed", range(50))
def test_pyomo_and_direct_agree(seed: int) -> None:
    inst = moderate_instance(seed)
    opts = SolveOptions(second_stage="none", time_limit_s=30)
    a, b = solve_direct(inst, opts), solve_pyomo(inst, opts)
    assert a.status == b.status == "optimal"
    out_a, out_b = assert_consistent(inst, a), assert_consistent(inst, b)
    assert close(out_a.cloud_load_bytes, out_b.cloud_load_bytes)
    # The model's objective is total - served: near 0 its float error is ~1e-16 x total.
    assert step_problem(inst).same_load(a.info["objective"], b.info["objective"])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_pyomo_and_direct_agree_deep_overload(seed: int) -> None:
    inst = moderate_instance(seed, cut=(0.15, 0.5))
    opts = SolveOptions(second_stage="none", time_limit_s=10)
    a, b = solve_direct(inst, opts), solve_pyomo(inst, opts)
    out_a, out_b = assert_consistent(inst, a), assert_consistent(inst, b)
    if a.status == b.status == "optimal":
        assert close(out_a.cloud_load_bytes, out_b.cloud_load_bytes)
    else:  # each one's incumbent is above the other's proven bound
        assert a.bound_bytes <= out_b.cloud_load_bytes and b.bound_bytes <= out_a.cloud_load_bytes


def test_overloaded_cases_bind() -> None:
    """The moderate set is not trivial: overloaded instances leave load in the cloud."""
    loads = [solve_direct(moderate_instance(s), SolveOptions(second_stage="none")) for s in (1, 3)]
    assert all(d.info["cloud_load_bytes"] > 0 for d in loads)


# ---- against the baselines ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_milp_not_worse_than_baselines(seed: int) -> None:
    inst = moderate_instance(seed)
    milp = judge(make_method("milp", MethodSettings(seed=seed)), inst)
    assert milp.status == "optimal"
    for name in BASELINES:
        base = judge(make_method(name, MethodSettings(seed=seed)), inst, step=0)
        assert milp.cloud_load_bytes <= base.cloud_load_bytes * (1 + 1e-9), name


def test_milp_not_worse_than_baselines_default_scenario() -> None:
    inst = generate_instance(Scenario(users=120, servers=4), seed=11)
    milp = judge(make_method("milp", MethodSettings(time_limit_s=20)), inst)
    for name in BASELINES:
        base = judge(make_method(name, MethodSettings(seed=11)), inst)
        assert milp.cloud_load_bytes <= base.cloud_load_bytes * (1 + 1e-9), name
        assert milp.bound_bytes <= base.cloud_load_bytes


# ---- writing the model --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".lp", ".mps"])
def test_write_model_reads_back(tmp_path: Path, suffix: str) -> None:
    inst = moderate_instance(5)
    path = write_model(inst, tmp_path / f"step{suffix}")
    assert path.stat().st_size > 0
    with solver_output():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(path))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    opt = solve_direct(inst, SolveOptions(second_stage="none"))
    assert close(h.getInfo().objective_function_value, opt.info["objective"])
    assert h.getNumCol() >= step_problem(inst).n_pairs


def test_write_model_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="write-model"):
        write_model(moderate_instance(0), tmp_path / "step.txt")


def test_pyomo_model_names_paper_constraints() -> None:
    inst = moderate_instance(1)
    m = build_step_model(step_problem(inst))
    assert len(m.C1) == len(set(step_problem(inst).pairs.user.tolist()))
    assert len(m.C4) <= inst.n_servers and len(m.C4) > 0


# ---- time limits, fallbacks, repairs ------------------------------------------------------


def test_time_limited_solve_reports_gap() -> None:
    inst = generate_instance(Scenario(users=300, servers=8), seed=2)
    d = solve_direct(inst, SolveOptions(time_limit_s=2.0, second_stage_time_limit_s=0.5))
    out = assert_consistent(inst, d)
    assert d.status in ("time_limit", "optimal")
    if d.status == "time_limit":
        assert 0 < d.info["gap"] < 1
        assert d.bound_bytes < out.cloud_load_bytes


def test_requested_gap_gives_feasible_or_optimal() -> None:
    inst = generate_instance(Scenario(users=240, servers=8), seed=1)
    d = solve_direct(inst, SolveOptions(gap=0.2, time_limit_s=20, second_stage="none"))
    assert_consistent(inst, d)
    assert d.status in ("feasible", "optimal")
    assert d.info["gap"] <= 0.2 + 1e-9


class _NoIncumbent:
    """A backend that stops at its time limit without any incumbent."""

    name = "stub"

    def build(self, problem) -> None:
        self.k = problem.n_pairs

    def solve(self, highs_options, start) -> StageRun:
        return StageRun("time_limit", None, None, -np.inf, None, 0, 0.0)

    def add_second_stage(self, kind, served) -> None:
        pass


class _Overfull(_NoIncumbent):
    """A backend whose incumbent puts every pair on: C1 and C4 broken."""

    def solve(self, highs_options, start) -> StageRun:
        return StageRun("optimal", np.ones(self.k), 0.0, 0.0, 0.0, 0, 0.0)


def test_no_incumbent_falls_back_to_greedy() -> None:
    inst = moderate_instance(3)
    d = solve_step(inst, _NoIncumbent(), SolveOptions(second_stage="none"))
    out = assert_consistent(inst, d)
    assert d.status == "time_limit" and "fallback" in d.info
    assert 0 <= d.bound_bytes <= out.cloud_load_bytes


def test_overfull_incumbent_is_repaired_and_not_optimal() -> None:
    inst = moderate_instance(3)
    d = solve_step(inst, _Overfull(), SolveOptions(second_stage="none"))
    out = simulator.apply(inst, d.action)
    assert d.info["repaired_users"] > 0 and d.status != "optimal"
    assert close(out.cloud_load_bytes, d.info["cloud_load_bytes"])
    assert (out.outcome[d.action != inst.cloud] == simulator.ADMITTED).all()


def test_greedy_assignment_is_feasible() -> None:
    for seed in range(10):
        inst = moderate_instance(seed)
        problem = step_problem(inst)
        chosen = greedy_assignment(problem)
        assert problem.fits(chosen).all()
        assert np.bincount(problem.pairs.user[chosen], minlength=inst.n_users).max() <= 1


# ---- the method ---------------------------------------------------------------------------


def test_make_milp_method_and_backends() -> None:
    inst = moderate_instance(7)
    method = make_method("milp", MethodSettings(seed=1, time_limit_s=10, threads=1))
    assert method.name == "milp"
    d = method.decide(inst, 0)
    assert d.info["backend"] == "highs-direct" and d.status == "optimal"
    p = make_milp("milp", MethodSettings(), backend="pyomo").decide(inst, 0)
    assert p.info["backend"] == "highs-pyomo"
    assert close(d.info["cloud_load_bytes"], p.info["cloud_load_bytes"])


def test_same_seed_same_action() -> None:
    inst = moderate_instance(9)
    a = make_milp("milp", MethodSettings(seed=4)).decide(inst, 0)
    b = make_milp("milp", MethodSettings(seed=4)).decide(inst, 0)
    np.testing.assert_array_equal(a.action, b.action)


def test_threads_can_change_between_solves() -> None:
    inst = moderate_instance(2)
    one = solve_direct(inst, SolveOptions(threads=1))
    two = solve_direct(inst, SolveOptions(threads=2))
    again = solve_pyomo(inst, SolveOptions(threads=1))
    assert one.status == two.status == again.status == "optimal"
    assert close(one.info["cloud_load_bytes"], two.info["cloud_load_bytes"])


def test_bad_options_are_input_errors() -> None:
    with pytest.raises(InputError, match="backend"):
        make_milp("milp", MethodSettings(), backend="gurobi")
    with pytest.raises(InputError, match="second_stage"):
        make_milp("milp", MethodSettings(), second_stage="fastest")
    with pytest.raises(InputError, match="gap"):
        make_milp("milp", MethodSettings(gap=-0.1))
    with pytest.raises(InputError, match="time_limit_s"):
        make_milp("milp", MethodSettings(time_limit_s=0))


def test_no_admissible_pair_is_all_cloud() -> None:
    inst = moderate_instance(4)
    inst = replace(inst, servers=replace(inst.servers, capacity_hz=inst.servers.capacity_hz * 0))
    d = solve_direct(inst)
    out = simulator.apply(inst, d.action)
    assert d.status == "optimal" and out.users_on_edge == 0
    assert close(d.bound_bytes, out.cloud_load_bytes)


def test_a_highs_run_started_elsewhere_does_not_break_the_next_solve() -> None:
    """HiGHS's thread scheduler is process-wide: a run by other code (default threads) before
    our first one used to make every later 1-thread run end in "error"."""
    import highspy

    from dtasm_opt.solvers.exact import highs_runtime

    highs_runtime._Scheduler.threads = None  # as in a fresh process
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addVar(0.0, 1.0)
    h.run()  # starts the scheduler with HiGHS's default thread count
    inst = generate_instance(Scenario(users=30, servers=3), seed=4)
    d = solve_direct(inst, SolveOptions(time_limit_s=10.0))
    assert d.status == "optimal"


def test_every_backend_the_cli_offers_exists() -> None:
    """The CLI's --backend choices (core) and the classes milp builds are one list."""
    from dtasm_opt.core.method import MILP_BACKENDS
    from dtasm_opt.solvers.exact.milp import BACKENDS, backend_class

    assert set(BACKENDS) == set(MILP_BACKENDS)
    assert all(backend_class(name) for name in MILP_BACKENDS)
