"""The independent checker: valid solutions pass, each kind of tampering is caught."""

import json

import numpy as np
import pytest

from dtasm_opt import verify
from dtasm_opt.core.files import write_json
from dtasm_opt.core.generator import Scenario, generate_instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.physics import target_physics
from dtasm_opt.core.solution import judge
from dtasm_opt.core.verify import verify as verify_doc
from dtasm_opt.solvers.registry import make_method

BASELINES = ("womig-stable", "womig-dynamic", "random", "nearest", "danearest")


@pytest.fixture(scope="module")
def inst():
    return generate_instance(Scenario(users=120, servers=4), seed=3)


def _solution(inst, name="nearest"):
    return judge(make_method(name, MethodSettings(seed=5)), inst).to_dict()


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_solutions_are_valid(inst, name):
    assert verify_doc(inst, _solution(inst, name)) == []


def test_wrong_cloud_load_is_caught(inst):
    doc = _solution(inst)
    doc["cloud_load_bytes"] *= 1 + 1e-6
    assert any("cloud_load_bytes" in p for p in verify_doc(inst, doc))


def test_overfull_server_is_caught(inst):
    doc = _solution(inst)
    final = np.array(doc["final_server"])
    final[:] = 0  # everyone on ES 0: far beyond its capacity
    doc["final_server"] = final.tolist()
    problems = verify_doc(inst, doc)
    assert any("(C4)" in p for p in problems)
    assert any("final_server" in p for p in problems)


def test_migration_beyond_xi_is_caught(inst):
    phys = target_physics(inst, np.arange(inst.n_servers)[None, :])
    s = inst.users.server
    u, h = np.argwhere((phys.migration_s > inst.xi_s) & (np.arange(inst.n_servers) != s[:, None]))[
        0
    ]
    doc = _solution(inst, "womig-stable")
    doc["final_server"][u] = int(h)
    assert any(f"user {u}: migration" in p and "(C2)" in p for p in verify_doc(inst, doc))


def test_bound_above_load_is_caught(inst):
    doc = _solution(inst)
    doc["bound_bytes"] = doc["cloud_load_bytes"] * 2 + 10
    assert any("bound_bytes" in p for p in verify_doc(inst, doc))


def test_cli_exit_codes(inst, tmp_path, capsys):
    ipath, spath = tmp_path / "i.json", tmp_path / "s.json"
    write_json(ipath, inst.to_dict())
    doc = _solution(inst)
    write_json(spath, doc)
    assert verify.main([str(ipath), str(spath)]) == 0
    doc["metrics"]["migrated"] += 1
    spath.write_text(json.dumps(doc))
    assert verify.main([str(ipath), str(spath)]) == 1
    assert "metrics.migrated" in capsys.readouterr().out
    spath.write_text("{")
    assert verify.main([str(ipath), str(spath)]) == 2
    assert capsys.readouterr().err.startswith("error:")
    doc["action"] = doc["action"][:-1]
    spath.write_text(json.dumps(doc))
    assert verify.main([str(ipath), str(spath)]) == 2
