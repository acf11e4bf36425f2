"""benchmarks/bench_exact.py: every solver it compares reaches the same proven optimum on
small states (step 0 and a later step), and an interrupted run resumes without solving a
state twice."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    """benchmarks/<name>.py as a module (the benchmarks import bench_exact's helpers)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_bench():
    return load_script("bench_exact")


def test_solvers_agree_on_proven_optima_and_a_rerun_solves_nothing(tmp_path, capsys):
    bench = load_bench()
    solvers = "milp,cpsat,lagrangian" + (",scip" if importlib.util.find_spec("pyscipopt") else "")
    out = tmp_path / "b.csv"
    args = ["--sizes", "30x2,40x3", "--seeds", "1-2", "--steps", "0,2", "--solvers", solvers,
            "--time-limit", "30", "--out", str(out)]  # fmt: skip
    assert bench.main(args) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 2 * 2 * len(solvers.split(","))
    by_state = defaultdict(dict)
    for r in rows:
        assert r["status"] == "optimal", r
        by_state[(r["size"], r["seed"], r["step"])][r["solver"]] = float(r["cloud_load_bytes"])
    for state, loads in by_state.items():
        ref = loads["milp"]
        for solver, load in loads.items():
            assert load == pytest.approx(ref, rel=1e-6, abs=1.0), (state, solver)
    capsys.readouterr()
    assert bench.main(args) == 0  # everything is in the CSV: nothing is solved again
    assert "optimal in" not in capsys.readouterr().err
    assert out.read_text().count("\n") == len(rows) + 1
    assert (tmp_path / "b.states").is_dir()  # the later states, cached


def test_its_later_states_are_the_benchmark_sets_instances(tmp_path):
    """bench_exact's state (size, seed, step) is instance seed - seed0 of a set made with
    ``--at-step step``: the benchmark's rows time the solvers on a set's very instances."""
    from dtasm_opt.core import files
    from dtasm_opt.core.generator import Scenario
    from dtasm_opt.core.method import MethodSettings
    from dtasm_opt.experiments.instance_set import write_set

    bench = load_bench()
    manifest = write_set(
        tmp_path / "set",
        Scenario(users=30, servers=2),
        4,
        2,
        settings=MethodSettings(time_limit_s=10, node_limit=1),
        at_step=3,
    )
    for entry in manifest["instances"]:
        inst = files.read_instance(tmp_path / "set" / entry["file"])
        state = bench.state(30, 2, entry["seed"], entry["step"], tmp_path / "cache")
        assert state.to_dict() | {"name": inst.name} == inst.to_dict()


def test_tiebreak_bench_agrees_with_milp_verifies_and_resumes(tmp_path, capsys):
    """benchmarks/bench_tiebreak.py: on small later states the engine's tie-break has milp's
    proven migrations, every certificate verifies, and a rerun solves nothing."""
    load_bench()  # bench_tiebreak imports bench_exact's helpers
    bench = load_script("bench_tiebreak")
    out = tmp_path / "t.csv"
    args = ["--sizes", "40x3,60x4", "--seeds", "1-2", "--steps", "2", "--time-limit", "30",
            "--out", str(out)]  # fmt: skip
    assert bench.main(args) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    for r in rows:
        assert r["verified"] == "True", r
        if r["milp_stage2"] == "optimal" and r["engine_stage2"] == "optimal":
            assert r["milp_migrated"] == r["engine_migrated"], r
    assert sum(r["certified_migrations"] == "True" for r in rows) >= 2
    capsys.readouterr()
    assert bench.main(args) == 0
    printed = capsys.readouterr()
    assert "engine" not in printed.err  # nothing solved again
    assert "| 40x3 | 2 |" in printed.out and "| 60x4 | 2 |" in printed.out


def test_tiebreak_bench_refuses_a_csv_with_other_columns(tmp_path, capsys):
    """A CSV from an older version (fewer columns) is not appended to: rows would shift."""
    load_bench()
    bench = load_script("bench_tiebreak")
    out = tmp_path / "old.csv"
    out.write_text(",".join(bench.COLUMNS[:-2]) + "\n")
    with pytest.raises(SystemExit) as err:
        bench.main(["--sizes", "40x3", "--seeds", "1", "--steps", "2", "--out", str(out)])
    assert err.value.code == 2 and "other columns" in capsys.readouterr().err
    assert out.read_text() == ",".join(bench.COLUMNS[:-2]) + "\n"


def test_tiebreak_rollout_bench_runs_both_methods_and_skips_finished_ones(tmp_path, capsys):
    load_bench()  # bench_tiebreak imports bench_exact's helpers
    bench = load_script("bench_tiebreak_rollout")
    out = tmp_path / "r.csv"
    args = ["--users", "40", "--servers", "3", "--steps", "3", "--out", str(out)]
    assert bench.main(args) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["milp"] * 3 + ["lagrangian"] * 3
    assert all(r["tie_break"] == "optimal" for r in rows)
    # the same tie-break optimum on every step (both proven, same trajectory then)
    assert [r["migrated"] for r in rows[:3]] == [r["migrated"] for r in rows[3:]]
    capsys.readouterr()
    assert bench.main(args) == 0
    printed = capsys.readouterr()
    assert "step" not in printed.err and "| lagrangian | 3 | 3 |" in printed.out


def test_tiebreak_rollout_bench_continues_each_method_from_its_last_step(tmp_path, capsys):
    load_bench()
    bench = load_script("bench_tiebreak_rollout")
    out = tmp_path / "r.csv"
    common = ["--users", "40", "--servers", "3", "--methods", "lagrangian", "--out", str(out)]
    assert bench.main([*common, "--steps", "4"]) == 0
    whole = out.read_text().splitlines()
    out.unlink()
    Path(f"{out}.servers.json").unlink()
    assert bench.main([*common, "--steps", "2"]) == 0
    # a kill after step 2's row was appended and before its servers were saved
    with open(out, "a") as fh:
        fh.write(whole[3] + "\r\n")
    capsys.readouterr()
    assert bench.main([*common, "--steps", "4"]) == 0
    err = capsys.readouterr().err
    assert "step 0" not in err and "step 1" not in err and "step 2" in err and "step 3" in err
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["0", "1", "2", "3"]
    # the same decisions as the run that was never interrupted (only the timing differs)
    column = bench.COLUMNS.index("decision_s")
    resumed = out.read_text().splitlines()
    assert [line.split(",")[:column] for line in resumed] == [
        line.split(",")[:column] for line in whole
    ]
