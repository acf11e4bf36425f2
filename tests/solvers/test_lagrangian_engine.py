"""The ``lagrangian`` method: equal to brute force and to HiGHS, its certificates issued where
they hold and re-checked by ``verify`` (:mod:`dtasm_opt.core.certificate`), its work limits.

References are independent of the engine: brute force over all (H+1)^U actions through the
simulator, the shared contract's optima, plain HiGHS, and ``verify``'s own recomputation.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from bruteforce import SEEDS, SIZES, brute_force, close, tiny_instance
from engine_method import as_json, engine
from families import moderate_instance
from hypothesis import given, settings
from hypothesis import strategies as st

from dtasm_opt.core import simulator
from dtasm_opt.core.certificate import CERTIFICATE_FORMAT
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.solution import judge
from dtasm_opt.core.verify import verify
from dtasm_opt.solvers import registry
from dtasm_opt.solvers.exact.engine import ENGINE_BACKEND, ENGINE_NODE_LIMIT
from dtasm_opt.solvers.exact.highs_direct import solve_direct
from dtasm_opt.solvers.exact.milp_driver import SolveOptions

CONTRACT = Path(__file__).resolve().parents[1] / "data" / "contract"


# --- the method and its certificates -----------------------------------------------------


@settings(max_examples=120)
@given(seed=SEEDS, size=SIZES, overloaded=st.booleans())
def test_engine_equals_brute_force_and_its_certificates_verify(
    seed: int, size: tuple[int, int], overloaded: bool
) -> None:
    inst = tiny_instance(seed, *size, overloaded)
    ref = brute_force(inst)
    sol = judge(engine(), inst)
    out = simulator.apply(inst, sol.action)
    assert sol.status == "optimal"
    assert close(out.cloud_load_bytes, ref.load)
    assert out.migrated == ref.migrations
    assert verify(inst, as_json(sol)) == []
    cert = sol.info.get("certificate")
    if cert is not None:
        assert cert["format"] == CERTIFICATE_FORMAT
        if "migrations" in cert:
            assert math.ceil(cert["migrations"]["bound"] - 1e-6) >= ref.migrations


@pytest.mark.parametrize("path", sorted(CONTRACT.glob("case-*.json")), ids=lambda p: p.stem)
def test_engine_reaches_the_contract_optimum(path: Path) -> None:
    """The shared contract's optima, computed independently of this project."""
    doc = json.loads(path.read_text())
    inst = Instance.from_dict(doc["instance"])
    sol = judge(engine(), inst)
    assert sol.status == "optimal"
    assert close(sol.cloud_load_bytes, doc["optimal_cloud_load_bytes"])
    assert verify(inst, as_json(sol)) == []


@pytest.mark.parametrize("seed", range(24))
def test_engine_equals_highs_where_highs_proves(seed: int) -> None:
    """Moderate instances (U 30-60, H 3-5, half of them overloaded): wherever plain HiGHS
    proves both stages, the engine has the same cloud load and the same migrations."""
    inst = moderate_instance(seed)
    ref = solve_direct(inst, SolveOptions(time_limit_s=60.0))
    if not (ref.status == "optimal" and ref.info["stage2_status"] == "optimal"):
        pytest.skip("HiGHS proves no reference here")
    sol = judge(engine(time_limit_s=60.0), inst)
    out = simulator.apply(inst, ref.action)
    assert sol.status == "optimal" and sol.info["stage2_status"] == "optimal"
    assert close(sol.cloud_load_bytes, out.cloud_load_bytes)
    assert sol.metrics["migrated"] == out.migrated
    assert verify(inst, as_json(sol)) == []


def test_certificates_are_issued_where_they_hold() -> None:
    """Not only trivial cases: tiny families where the stage-2 bound must be proved."""
    proved_load = proved_migrations = 0
    for seed in range(40):
        inst = tiny_instance(seed, 5, 3, overloaded=seed % 2 == 1)
        sol = judge(engine(), inst)
        cert = sol.info.get("certificate", {})
        proved_load += "load" in cert
        proved_migrations += "migrations" in cert
        assert verify(inst, as_json(sol)) == []
    assert proved_load >= 10 and proved_migrations >= 30, (proved_load, proved_migrations)


@pytest.fixture(scope="module")
def certified() -> tuple:
    """A (60, 4) state after a few MILP-greedy steps, with both certificates."""
    stream = generate_stream(Scenario(users=60, servers=4), seed=11, steps=3)
    server = None
    method = engine()
    for t in range(3):
        inst = stream.instance(t, server)
        sol = judge(method, inst, t)
        server = sol.final_server
    return inst, sol


def test_a_later_state_is_certified(certified) -> None:
    inst, sol = certified
    cert = sol.info["certificate"]
    assert {"load", "migrations"} <= set(cert)
    assert sol.info["stage2_status"] == "optimal"
    assert verify(inst, as_json(sol)) == []


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda c: c["migrations"].update(bound=c["migrations"]["bound"] + 1), "give only"),
        (lambda c: c["load"].update(bound_bytes=c["load"]["bound_bytes"] + 1e3), "give only"),
        (
            lambda c: c["migrations"]["multipliers"].__setitem__(slice(None), [0.0] * 60),
            "give only",
        ),
        (lambda c: c["migrations"].update(multipliers=[1.0]), "60 finite numbers"),
        (lambda c: c.update(grid_hz=-1), "positive number"),
        (lambda c: c.update(grid_hz=1.0), "too fine"),
        (lambda c: c.update(format="x"), "dtasm-certificate/1"),
        (lambda c: c["migrations"].update(bound="many"), "not a finite number"),
    ],
)
def test_a_tampered_certificate_is_caught(certified, tamper, message: str) -> None:
    inst, sol = certified
    doc = copy.deepcopy(as_json(sol))
    tamper(doc["info"]["certificate"])
    problems = verify(inst, doc)
    assert any(message in p for p in problems), problems


def test_a_false_optimality_claim_is_caught(certified) -> None:
    """A certificate whose (correct) bound is below the solution's value may not claim it."""
    inst, sol = certified
    doc = copy.deepcopy(as_json(sol))
    mig = doc["info"]["certificate"]["migrations"]
    mig["multipliers"] = [0.0] * inst.n_users
    mig["bound"] = -1e9  # valid, but proves nothing
    problems = verify(inst, doc)
    assert any("claims to prove" in p for p in problems), problems


def test_defaults_are_a_work_limit_on_the_scaled_matrix() -> None:
    """Unless told otherwise the engine stops HiGHS by nodes (it repeats itself) on the scaled
    matrix; a user's own choice wins."""
    inst = generate_stream(Scenario(users=40, servers=3), seed=4).instance(0)
    sol = judge(engine(), inst)
    assert sol.info["backend"] == "highs-scaled"
    assert engine().milp.options.node_limit == ENGINE_NODE_LIMIT
    mine = engine(backend="direct", node_limit=7)
    assert mine.milp.backend == "direct" and mine.milp.options.node_limit == 7


def test_same_answer_every_run() -> None:
    inst = generate_stream(Scenario(users=60, servers=4), seed=5).instance(0, None)
    a, b = judge(engine(), inst), judge(engine(), inst)
    assert np.array_equal(a.action, b.action)
    assert a.info.get("certificate") == b.info.get("certificate")
    assert a.info.get("lagrangian_rounds") == b.info.get("lagrangian_rounds")


def test_a_rollout_repeats_and_sizes_can_change() -> None:
    """Each step is solved on its own (no state carried between steps): two fresh engines on
    the same rollout give the same steps, and one engine moves between systems of different
    sizes."""

    def rollout(method) -> list:
        stream = generate_stream(Scenario(users=60, servers=4), seed=7, steps=4)
        server, out = None, []
        for t in range(4):
            sol = judge(method, stream.instance(t, server), t)
            server = sol.final_server
            out.append((sol.action.tolist(), sol.info.get("certificate")))
        return out

    assert rollout(engine()) == rollout(engine())
    method = engine()
    for users, servers in ((60, 4), (30, 2), (60, 4)):
        inst = generate_stream(Scenario(users=users, servers=servers), seed=2).instance(0)
        sol = judge(method, inst)
        assert sol.status == "optimal" and verify(inst, as_json(sol)) == []


@pytest.mark.parametrize("second_stage", ["none", "downtime"])
def test_other_tie_breaks_are_milps(second_stage: str) -> None:
    """Without the migrations tie-break the engine is milp with the engine's defaults (plus a
    load certificate)."""
    inst = generate_stream(Scenario(users=40, servers=3), seed=4).instance(0)
    sol = judge(engine(second_stage=second_stage), inst)
    defaults = MethodSettings(
        second_stage=second_stage, backend=ENGINE_BACKEND, node_limit=ENGINE_NODE_LIMIT
    )
    ref = judge(registry.make_method(registry.REFERENCE, defaults), inst)
    assert np.array_equal(sol.action, ref.action)
    assert sol.info["stage2_status"] == ref.info["stage2_status"]
    assert "migrations" not in sol.info.get("certificate", {})
    assert verify(inst, as_json(sol)) == []
