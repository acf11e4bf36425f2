"""Benchmark sets: reference values that an independent method confirms, and resumable runs."""

import itertools
import json

import numpy as np
import pytest

from dtasm_opt.core import files, simulator
from dtasm_opt.core.generator import Scenario
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.verify import verify
from dtasm_opt.errors import InputError
from dtasm_opt.experiments.instance_set import write_set
from dtasm_opt.generate import main


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
