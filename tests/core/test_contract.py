"""The simulator against the contract vectors (computed by an independent implementation).

The vectors are copied verbatim from the project's shared contract into ``data/contract/``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from dtasm_opt.core import simulator
from dtasm_opt.core.instance import Instance

DATA = Path(__file__).resolve().parents[1] / "data" / "contract"
CASES = sorted(DATA.glob("case-*.json"))
REL = 1e-9
# Brute force over (H + 1)^U actions: the larger vectors go to the slow suite.
FAST_ACTIONS = 5000


def _load(path: Path) -> tuple[Instance, dict]:
    doc = json.loads(path.read_text())
    return Instance.from_dict(doc["instance"]), doc


def test_all_vectors_present():
    assert len(CASES) == 12


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_contract_vector(path):
    inst, doc = _load(path)
    assert len(doc["steps"]) == 4
    for k, expected in enumerate(doc["steps"]):
        out = simulator.apply(inst, expected["action"])
        where = f"{path.stem} action {k}"
        assert out.final_server.tolist() == expected["final_server"], where
        assert out.cloud_load_bytes == pytest.approx(
            expected["cloud_load_bytes"], rel=REL, abs=0.0
        ), where
        assert out.mean_downtime_s == pytest.approx(
            expected["mean_downtime_s"], rel=REL, abs=0.0
        ), where
        for key in ("migrated", "migration_failed", "rejected", "users_on_edge"):
            assert getattr(out, key) == expected[key], f"{where}: {key}"


def _brute_force_optimum(inst: Instance) -> float:
    best = np.inf
    for action in itertools.product(range(inst.cloud + 1), repeat=inst.n_users):
        best = min(best, simulator.apply(inst, np.array(action)).cloud_load_bytes)
    return best


def _n_actions(path: Path) -> int:
    inst, _ = _load(path)
    return (inst.cloud + 1) ** inst.n_users


@pytest.mark.parametrize(
    "path",
    [
        p if _n_actions(p) <= FAST_ACTIONS else pytest.param(p, marks=pytest.mark.slow)
        for p in CASES
    ],
    ids=[p.stem for p in CASES],
)
def test_optimal_cloud_load_by_enumerating_actions(path):
    inst, doc = _load(path)
    optimum = doc["optimal_cloud_load_bytes"]
    got = _brute_force_optimum(inst)
    assert got == pytest.approx(optimum, rel=REL, abs=1e-6)
