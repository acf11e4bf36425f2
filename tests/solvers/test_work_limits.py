"""Work limits (HiGHS nodes, CP-SAT deterministic time): a search they stop gives the same
answer on every run, in this process or another, and says that a work limit stopped it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from dtasm_opt.core.generator import Scenario, generate_instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.errors import InputError
from dtasm_opt.solvers import registry

# 80 users on 2 ESs (seed 1): neither solver proves this step within the limits below (HiGHS's
# root alone needs more than one node), yet each stops in well under a second.
HARD = Scenario(users=80, servers=2)
LIMITS = {
    "milp": MethodSettings(node_limit=1),
    "cpsat": MethodSettings(deterministic_limit=0.05),
}

RUN_ONE = """
import hashlib, json, sys
from dtasm_opt.core.generator import Scenario, generate_instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.solvers import registry
method, settings = sys.argv[1], MethodSettings(**json.loads(sys.argv[2]))
sol = judge(registry.make_method(method, settings), generate_instance(Scenario(80, 2), 1))
print(json.dumps([sol.status, sol.cloud_load_bytes, sol.bound_bytes,
                  hashlib.sha256(sol.action.tobytes()).hexdigest()]))
"""


def _fingerprint(method: str, settings: MethodSettings) -> list:
    sol = judge(registry.make_method(method, settings), generate_instance(HARD, 1))
    digest = hashlib.sha256(sol.action.tobytes()).hexdigest()
    return [sol.status, sol.cloud_load_bytes, sol.bound_bytes, digest]


@pytest.mark.parametrize("method", sorted(LIMITS))
def test_a_binding_work_limit_repeats_in_this_and_another_process(method):
    settings = LIMITS[method]
    first = _fingerprint(method, settings)
    assert first[0] == "work_limit"  # the limit binds: no proof, an incumbent
    assert first[2] is None or first[2] < first[1]
    assert _fingerprint(method, settings) == first
    changed = {k: v for k, v in vars(settings).items() if v != getattr(MethodSettings(), k)}
    out = subprocess.run(
        [sys.executable, "-c", RUN_ONE, method, json.dumps(changed)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == first


def test_more_work_never_ends_worse_at_the_same_seed():
    """A larger node limit (the same seed) explores at least what the smaller one did; HiGHS
    keeps its incumbent, so the cloud load cannot rise."""
    loads = [_fingerprint("milp", MethodSettings(node_limit=n))[1] for n in (1, 200)]
    assert loads[1] <= loads[0] + 1e-6


def test_wall_clock_still_guards_and_is_named_when_it_binds():
    # A wall-clock limit far below what one node needs stops the search first.
    settings = MethodSettings(node_limit=1_000_000, time_limit_s=0.001)
    sol = judge(registry.make_method("milp", settings), generate_instance(HARD, 1))
    assert sol.status == "time_limit"


@pytest.mark.parametrize(
    ("method", "settings", "field"),
    [
        ("milp", MethodSettings(node_limit=0), "node_limit"),
        ("milp", MethodSettings(node_limit=2**40), "node_limit"),
        ("cpsat", MethodSettings(deterministic_limit=-1.0), "deterministic_limit"),
        ("lagrangian", MethodSettings(tree_rounds=-1), "tree_rounds"),
        ("lagrangian", MethodSettings(open_load_tree_rounds=-1), "open_load_tree_rounds"),
        ("lagrangian", MethodSettings(tree_nodes=-1), "tree_nodes"),
        ("lagrangian", MethodSettings(fixed_nodes=-1), "fixed_nodes"),
        ("lagrangian", MethodSettings(fixed_nodes=2**40), "fixed_nodes"),
        ("lagrangian", MethodSettings(cloud_sets=-1), "cloud_sets"),
        ("lagrangian", MethodSettings(cloud_sets=10**9), "cloud_sets"),
        ("lagrangian", MethodSettings(tree_nodes=10**9), "tree_nodes"),
        ("lagrangian", MethodSettings(column_reach=-1), "column_reach"),
        ("lagrangian", MethodSettings(column_reach=True), "column_reach"),
        ("lagrangian", MethodSettings(tree_reach=-1), "tree_reach"),
        ("lagrangian", MethodSettings(column_rounds=2.5), "column_rounds"),  # type: ignore[arg-type]
        ("lagrangian", MethodSettings(column_rounds=10**9), "column_rounds"),
        ("lagrangian", MethodSettings(overloaded_nodes=-1), "overloaded_nodes"),
        ("lagrangian", MethodSettings(neighbourhood_tries=-1), "neighbourhood_tries"),
        ("lagrangian", MethodSettings(neighbourhood_tries=10**9), "neighbourhood_tries"),
    ],
)
def test_bad_work_limits_are_refused_by_name(method, settings, field):
    with pytest.raises(InputError, match=field):
        registry.make_method(method, settings)


def test_each_limit_is_a_setting_of_its_own_solver_only():
    assert "node_limit" in registry.info("milp").settings
    assert "deterministic_limit" in registry.info("cpsat").settings
    assert "node_limit" not in registry.info("cpsat").settings


# The engine as another machine would run it, as far as one machine can play one: OpenBLAS's
# kernels for another CPU, numpy without its AVX2 loops, numba compiled for a generic x86-64.
# Its plans and certificate must not change: a study's rows repeat on any machine.
ON_CPU = """
import hashlib, json
import numpy as np
from dtasm_opt.core.generator import Scenario, generate_instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.solvers import registry
g = np.random.default_rng(0).standard_normal(1000)
decision = registry.make_method("lagrangian", MethodSettings()).decide(
    generate_instance(Scenario(200, 8), 1), 0)
print(json.dumps([float(g @ g).hex(), decision.status, decision.bound_bytes,
                  hashlib.sha256(decision.action.tobytes()).hexdigest(),
                  json.dumps(decision.info["certificate"], sort_keys=True)]))
"""


def _x86_with_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            return " avx2 " in fh.read().replace("\n", " ")
    except OSError:
        return False


@pytest.mark.skipif(not _x86_with_avx2(), reason="emulates other x86 CPUs (needs Linux, AVX2)")
def test_the_engine_decides_the_same_on_another_cpu(tmp_path):
    def run(extra: dict) -> list:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), **extra}
        out = subprocess.run(
            [sys.executable, "-c", ON_CPU], capture_output=True, text=True, check=True, env=env
        )
        return json.loads(out.stdout)

    here = run({"OPENBLAS_CORETYPE": "Haswell"})
    other = {"OPENBLAS_CORETYPE": "Prescott", "NUMBA_CPU_NAME": "generic"}
    if "X86_V3" in _numpy_cpu_features():
        other["NPY_DISABLE_CPU_FEATURES"] = "X86_V3"
    there = run(other)
    if here[0] == there[0]:
        pytest.skip("this BLAS does not change with OPENBLAS_CORETYPE: nothing emulated")
    assert here[2] is not None and here[1] == "optimal"
    assert there[1:] == here[1:]  # BLAS's own sum differs (above); the engine's answer not


def _numpy_cpu_features() -> dict:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        return {}
    return dict(__cpu_features__)
