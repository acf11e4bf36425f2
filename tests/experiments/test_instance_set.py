"""Benchmark sets: reference values that an independent method confirms, and resumable runs."""

import itertools
import json

import numpy as np
import pytest

from dtasm_opt.core import files, simulator
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.verify import verify
from dtasm_opt.errors import InputError
from dtasm_opt.experiments.instance_set import write_set
from dtasm_opt.experiments.states import rollout_state
from dtasm_opt.generate import main
from dtasm_opt.solvers import registry


def _brute_force(inst) -> float:
    actions = itertools.product(range(inst.n_servers + 1), repeat=inst.n_users)
    return min(simulator.apply(inst, np.array(a)).cloud_load_bytes for a in actions)


@pytest.mark.parametrize("method", ["milp", "cpsat"])
def test_reference_values_equal_brute_force(tmp_path, method):
    # 6 users on 2 ESs, capacities from Table II: brute force is 729 actions per instance.
    manifest = write_set(
        tmp_path / "set",
        Scenario(users=6, servers=2, apps=3),
        11,
        4,
        method=method,
        settings=MethodSettings(time_limit_s=10),
    )
    assert [e["seed"] for e in manifest["instances"]] == [11, 12, 13, 14]
    for entry in manifest["instances"]:
        inst = files.read_instance(tmp_path / "set" / entry["file"])
        doc = files.read_json(tmp_path / "set" / entry["solution"])
        assert entry["status"] == "optimal"
        assert entry["objective_bytes"] == pytest.approx(_brute_force(inst), rel=1e-9, abs=1e-6)
        assert entry["bound_bytes"] <= entry["objective_bytes"] + 1e-6
        assert verify(inst, doc) == []


def test_overloaded_family_through_the_cli_and_resume(tmp_path, capsys):
    out = tmp_path / "hard"
    args = [
        "--users",
        "80",
        "--servers",
        "2",
        "--seed",
        "3",
        "--set",
        str(out),
        "--time-limit",
        "2",
    ]
    assert main([*args, "--count", "2"]) == 0
    first = json.loads((out / "manifest.json").read_text())
    stamp = (out / "u80-h2-000.solution.json").stat().st_mtime_ns
    assert main([*args, "--count", "3"]) == 0  # extends the set, keeps what was solved
    second = json.loads((out / "manifest.json").read_text())
    assert second["instances"][:2] == first["instances"]
    assert len(second["instances"]) == 3
    assert (out / "u80-h2-000.solution.json").stat().st_mtime_ns == stamp
    loads = [e["objective_bytes"] for e in second["instances"]]
    assert max(loads) > 0  # 80 users on 2 ESs: some load must stay in the cloud
    for e in second["instances"]:
        assert e["solver"] == "milp" and e["solver_version"]
        assert 0 <= e["bound_bytes"] <= e["objective_bytes"] + 1e-6


@pytest.mark.parametrize(
    "extra",
    [
        ["--steps", "3"],  # a set holds instances
        ["--method", "nearest"],  # reference values need an exact method
        ["--count", "0"],
    ],
)
def test_bad_set_options_exit_2(tmp_path, capsys, extra):
    args = ["--users", "5", "--servers", "2", "--seed", "1", "--set", str(tmp_path / "s")]
    assert main([*args, *extra]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_another_family_in_the_same_folder_is_refused(tmp_path, capsys):
    args = ["--servers", "2", "--seed", "1", "--set", str(tmp_path / "s"), "--count", "1"]
    assert main(["--users", "5", *args]) == 0
    assert main(["--users", "6", *args]) == 2
    assert "another family" in capsys.readouterr().err


def test_a_set_written_before_newer_settings_existed_still_resumes(tmp_path):
    """Settings added since a set was made (the work limits) read as their defaults: a
    shipped set's manifest resumes; a set made with another value is still refused."""
    folder = tmp_path / "set"
    scenario = Scenario(users=6, servers=2, apps=3)
    write_set(folder, scenario, 11, 1, settings=MethodSettings(time_limit_s=10))
    doc = json.loads((folder / "manifest.json").read_text())
    for key in ("node_limit", "deterministic_limit"):
        del doc["solver"]["settings"][key]  # as a manifest written before they existed
    (folder / "manifest.json").write_text(json.dumps(doc))
    manifest = write_set(folder, scenario, 11, 2, settings=MethodSettings(time_limit_s=10))
    assert len(manifest["instances"]) == 2
    with pytest.raises(InputError, match="another family or solver"):
        write_set(folder, scenario, 11, 3, settings=MethodSettings(time_limit_s=10, node_limit=5))


def _milp_greedy_state(scenario, seed, step):
    """Step ``step`` reached by MILP-greedy at 1 node per stage, played here step by step."""
    stream = generate_stream(scenario, seed, steps=step + 1)
    policy = registry.make_method("milp", MethodSettings(seed=seed, node_limit=1))
    server = None
    for t in range(step):
        inst = stream.instance(t, server)
        server = simulator.apply(inst, policy.decide(inst, t).action).final_server
    return stream.instance(step, server)


def test_a_set_at_a_later_step_holds_milp_greedys_states_with_exact_references(tmp_path):
    scenario = Scenario(users=6, servers=2, apps=3)
    manifest = write_set(
        tmp_path / "set", scenario, 21, 3, settings=MethodSettings(time_limit_s=10), at_step=2
    )
    assert manifest["family"]["at_step"] == 2
    for i, entry in enumerate(manifest["instances"]):
        inst = files.read_instance(tmp_path / "set" / entry["file"])
        expected = _milp_greedy_state(scenario, 21 + i, 2)
        assert entry["step"] == 2 and inst.meta["step"] == 2 and inst.name == entry["name"]
        np.testing.assert_array_equal(inst.users.server, expected.users.server)
        np.testing.assert_array_equal(inst.users.task_bits, expected.users.task_bits)
        assert entry["status"] == "optimal"
        assert entry["objective_bytes"] == pytest.approx(_brute_force(inst), rel=1e-9, abs=1e-6)


def test_later_states_are_not_step_0_again():
    scenario = Scenario(users=100, servers=2)  # overloaded: some users go to the cloud
    state = rollout_state(scenario, 5, 4)
    first = generate_instance(scenario, 5)
    assert (state.users.server != first.users.server).any()  # MILP-greedy moved someone
    np.testing.assert_array_equal(
        state.users.server, _milp_greedy_state(scenario, 5, 4).users.server
    )
    assert rollout_state(scenario, 5, 0).to_dict() == first.to_dict()


def test_a_step_0_family_has_no_at_step_and_another_step_is_another_family(tmp_path):
    scenario = Scenario(users=5, servers=2, apps=3)
    folder = tmp_path / "set"
    manifest = write_set(folder, scenario, 1, 1, settings=MethodSettings(time_limit_s=10))
    assert "at_step" not in manifest["family"]  # shipped step-0 sets keep resuming
    assert manifest["instances"][0]["step"] == 0
    with pytest.raises(InputError, match="another family"):
        write_set(folder, scenario, 1, 1, settings=MethodSettings(time_limit_s=10), at_step=1)


def test_at_step_through_the_cli_and_its_refusals(tmp_path, capsys):
    base = ["--users", "5", "--servers", "2", "--seed", "1", "--apps", "3"]
    out = tmp_path / "s"
    assert main([*base, "--set", str(out), "--count", "1", "--at-step", "3", "--quiet"]) == 0
    assert json.loads((out / "manifest.json").read_text())["instances"][0]["step"] == 3
    for bad in (["--out", str(tmp_path / "x.json"), "--at-step", "2"],
                ["--set", str(tmp_path / "t"), "--at-step", "-1"],
                ["--set", str(tmp_path / "t"), "--at-step", "10001"]):  # fmt: skip
        assert main([*base, *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "--at-step" in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "t").exists()
