"""`python -m dtasm_opt.solve`: the printed solution is the simulator's judgement of its action."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dtasm_opt.core import files, simulator
from dtasm_opt.core.solution import SOLUTION_FORMAT, STATUSES
from dtasm_opt.solve import main

BASELINES = ["nearest", "danearest", "random", "womig-stable", "womig-dynamic"]


def solve(capsys, *args: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def check_solution(doc: dict, inst) -> None:
    assert doc["format"] == SOLUTION_FORMAT
    assert doc["status"] in STATUSES
    assert len(doc["action"]) == inst.n_users
    out = simulator.apply(inst, np.array(doc["action"]))
    assert doc["final_server"] == out.final_server.tolist()
    assert doc["cloud_load_bytes"] == out.cloud_load_bytes
    assert doc["metrics"] == out.metrics()


@pytest.mark.parametrize("method", BASELINES)
def test_stdout_solution_is_valid(instance_file, capsys, method):
    rc, out, err = solve(capsys, instance_file, "--method", method)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["method"] == method
    check_solution(doc, files.read_instance(instance_file))


def test_nearest_targets_the_users_ran(instance_file, capsys):
    _, out, _ = solve(capsys, instance_file, "--method", "nearest")
    assert json.loads(out)["action"] == files.read_instance(instance_file).users.ran.tolist()


def test_out_writes_the_file_and_summary_goes_to_stderr(instance_file, tmp_path, capsys):
    path = tmp_path / "sol.json"
    rc, out, err = solve(capsys, instance_file, "--method", "random", "--out", path)
    assert rc == 0
    assert out == ""
    check_solution(files.read_json(path), files.read_instance(instance_file))
    assert "method random" in err and "cloud load" in err and "migrated" in err
    assert "on edge" in err


def test_seed_decides_random_draws(instance_file, capsys):
    first = json.loads(solve(capsys, instance_file, "--method", "random", "--seed", "1")[1])
    again = json.loads(solve(capsys, instance_file, "--method", "random", "--seed", "1")[1])
    other = json.loads(solve(capsys, instance_file, "--method", "random", "--seed", "2")[1])
    assert first["action"] == again["action"]
    assert first["action"] != other["action"]


def test_stream_needs_step_zero(stream_file, tmp_path, capsys):
    rc, _, err = solve(capsys, stream_file, "--method", "nearest")
    assert rc == 2 and "--step 0" in err and err.count("\n") == 1
    rc, _, err = solve(capsys, stream_file, "--method", "nearest", "--step", "2")
    assert rc == 2 and "only step 0" in err
    rc, out, _ = solve(capsys, stream_file, "--method", "nearest", "--step", "0")
    assert rc == 0
    check_solution(json.loads(out), files.read_stream(stream_file).instance(0))


def test_step_on_an_instance_is_refused(instance_file, capsys):
    rc, _, err = solve(capsys, instance_file, "--method", "nearest", "--step", "0")
    assert rc == 2 and err.startswith("error: --step")


@pytest.mark.parametrize(
    "extra",
    [
        ["--time-limit", "0"],
        ["--time-limit", "-1"],
        ["--time-limit", "inf"],
        ["--gap", "-0.1"],
        ["--gap", "nan"],
        ["--threads", "0"],
        ["--seed", "x"],
        ["--method", "no-such-method"],
    ],
)
def test_bad_options_exit_2(instance_file, tmp_path, capsys, extra):
    out = tmp_path / "sol.json"
    rc, stdout, err = solve(capsys, instance_file, "--method", "nearest", *extra, "--out", out)
    assert rc == 2
    assert stdout == "" and err.count("\n") == 1 and err.startswith("error: ")
    assert not out.exists()


def test_valid_solver_options_are_accepted(instance_file, capsys):
    rc, out, _ = solve(
        capsys,
        instance_file,
        *("--method", "nearest", "--time-limit", "5", "--gap", "0.01", "--threads", "2"),
    )
    assert rc == 0 and json.loads(out)["method"] == "nearest"


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "--time-limit" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".lp", ".mps"])
def test_write_model_writes_a_model_highs_reads_back(instance_file, tmp_path, capsys, suffix):
    import highspy

    path = tmp_path / f"model{suffix}"
    code, out, _ = solve(capsys, instance_file, "--method", "milp", "--write-model", str(path))
    assert code == 0
    h = highspy.Highs()
    h.silent()
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    inst = files.read_instance(instance_file)
    # The model's objective is the cloud load in bytes: the solver's optimum is the solution's.
    assert h.getInfo().objective_function_value == pytest.approx(
        json.loads(out)["cloud_load_bytes"], rel=1e-9, abs=1e-3
    )
    assert inst.n_users > 0


@pytest.mark.parametrize("stage", ["migrations", "downtime", "none"])
def test_second_stage_reaches_the_milp(instance_file, capsys, stage):
    code, out, _ = solve(capsys, instance_file, "--method", "milp", "--second-stage", stage)
    assert code == 0
    assert json.loads(out)["status"] == "optimal"


def test_cpsat_refuses_a_tie_break_it_lacks(instance_file, capsys):
    code, out, err = solve(capsys, instance_file, "--method", "cpsat", "--second-stage", "downtime")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "second stage" in err


def test_bad_model_suffix_exits_2(instance_file, tmp_path, capsys):
    code, _, err = solve(capsys, instance_file, "--write-model", str(tmp_path / "m.txt"))
    assert code == 2 and "write-model" in err
    assert not (tmp_path / "m.txt").exists()


def test_work_limit_flags_reach_the_solvers(tmp_path, capsys):
    """`--node-limit` and `--deterministic-limit` stop the search at the same point on every
    run; the solution says a work limit stopped it."""
    from dtasm_opt.core.generator import Scenario, generate_instance

    path = tmp_path / "hard.json"
    files.write_json(path, generate_instance(Scenario(users=80, servers=2), 1).to_dict())
    for flags in (["--method", "milp", "--node-limit", "1"],
                  ["--method", "cpsat", "--deterministic-limit", "0.05"]):  # fmt: skip
        docs = []
        for _ in range(2):
            rc, out, err = solve(capsys, path, *flags)
            assert rc == 0, err
            docs.append(json.loads(out))
        assert docs[0]["status"] == "work_limit"
        assert docs[0]["action"] == docs[1]["action"]
        check_solution(docs[0], files.read_instance(path))


@pytest.mark.parametrize(
    "flags",
    [
        ["--node-limit", "0"],
        ["--node-limit", "x"],
        ["--deterministic-limit", "0"],
        ["--tree-rounds", "-1"],
        ["--column-rounds", "x"],
    ],
)
def test_bad_work_limits_exit_2(instance_file, capsys, flags):
    rc, out, err = solve(capsys, instance_file, "--method", "milp", *flags)
    assert rc == 2 and out == ""
    assert err.startswith("usage:") or err.startswith("error:")
    assert flags[0] in err


def test_lagrangian_solution_and_its_certificate_pass_verify(instance_file, tmp_path, capsys):
    """The README's pair: solve --method lagrangian --out, then verify (certificate included);
    a certificate whose bound is raised makes verify exit 1 and name it."""
    from dtasm_opt.verify import main as verify_main

    out = tmp_path / "sol.json"
    rc, _, err = solve(capsys, instance_file, "--method", "lagrangian", "--time-limit", "30",
                       "--out", out)  # fmt: skip
    assert rc == 0, err
    doc = json.loads(out.read_text())
    check_solution(doc, files.read_instance(instance_file))
    assert doc["status"] == "optimal"
    assert doc["info"]["certificate"]["format"] == "dtasm-certificate/1"
    capsys.readouterr()
    assert verify_main([str(instance_file), str(out)]) == 0
    said = capsys.readouterr().err  # messages go to stderr
    assert said.startswith("valid") and "proven optimal (recomputed from" in said
    cert = doc["info"]["certificate"]
    part, key = ("migrations", "bound") if "migrations" in cert else ("load", "bound_bytes")
    cert[part][key] += 1e6
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    capsys.readouterr()
    assert verify_main([str(instance_file), str(bad)]) == 1
    assert f"info.certificate.{part}" in capsys.readouterr().out


def test_an_overloaded_step_without_highs_keeps_stdout_json(tmp_path):
    """--overloaded-nodes 0 in a fresh process: the first HiGHS model made is the engine's LP
    (HiGHS prints a banner when its first model is made), and stdout still holds the
    solution's JSON alone; stage 1 came from the engine's plans, not HiGHS."""
    import subprocess
    import sys

    from families import moderate_instance

    path = tmp_path / "overloaded.json"
    files.write_json(path, moderate_instance(5, (0.15, 0.25)).to_dict())
    run = subprocess.run(
        [sys.executable, "-m", "dtasm_opt.solve", str(path), "--method", "lagrangian",
         "--overloaded-nodes", "0"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["info"]["stage1"] == "lagrangian" and doc["info"]["nodes"] == 0
