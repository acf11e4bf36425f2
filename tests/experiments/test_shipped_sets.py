"""The benchmark sets shipped in studies/sets: every reference solution passes the
independent check, its objective is the simulator's, and a later-step set's instances are
the states that the documented rollout reaches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dtasm_opt.core import files, simulator
from dtasm_opt.core.generator import Scenario
from dtasm_opt.core.verify import verify
from dtasm_opt.experiments.instance_set import MANIFEST, SET_FORMAT
from dtasm_opt.experiments.states import rollout_state

SETS = sorted((Path(__file__).resolve().parents[2] / "studies" / "sets").iterdir())
SCENARIO_KEYS = ("users", "servers", "apps", "xi_s", "mobility", "stay_prob", "gamma_shape")


@pytest.mark.parametrize("folder", SETS, ids=[f.name for f in SETS])
def test_every_reference_solution_checks_out(folder):
    manifest = files.read_json(folder / MANIFEST)
    assert manifest["format"] == SET_FORMAT
    family = manifest["family"]
    assert len(manifest["instances"]) >= 5
    for i, entry in enumerate(manifest["instances"]):
        inst = files.read_instance(folder / entry["file"])
        doc = files.read_json(folder / entry["solution"])
        assert verify(inst, doc) == [], entry["name"]
        outcome = simulator.apply(inst, np.asarray(doc["action"]))
        assert entry["objective_bytes"] == pytest.approx(outcome.cloud_load_bytes, rel=1e-12)
        assert entry["bound_bytes"] <= entry["objective_bytes"] * (1 + 1e-12)
        assert entry["seed"] == family["seed0"] + i
        assert inst.n_users == family["users"] and inst.n_servers == family["servers"]
        assert entry.get("step", 0) == family.get("at_step", 0) == inst.meta.get("step", 0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "folder", [f for f in SETS if "at_step" in files.read_json(f / MANIFEST)["family"]][:1]
)
def test_a_later_step_sets_first_instance_is_the_documented_state(folder):
    manifest = files.read_json(folder / MANIFEST)
    family, entry = manifest["family"], manifest["instances"][0]
    scenario = Scenario(**{k: family[k] for k in SCENARIO_KEYS})
    state = rollout_state(scenario, entry["seed"], family["at_step"], name=entry["name"])
    assert state.to_dict() == files.read_instance(folder / entry["file"]).to_dict()
