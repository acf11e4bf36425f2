"""Shared small fixtures (Table II instances and streams small enough for fast CLI tests) and
the Hypothesis settings profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream

# Hypothesis profiles. "ci" (the default) draws the same examples on every run (derandomized,
# so no example database either), never fails on timing (no deadline, no too-slow health
# check) and prints the blob that reproduces a failure. "dev" draws fresh examples each run
# and remembers failing ones in .hypothesis/. Choose with HYPOTHESIS_PROFILE=dev. Each
# property sets its own max_examples, sized to the runtime of the tests it replaced.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SMALL = Scenario(users=12, servers=3, apps=4)  # every method runs in well under 1 ms a step
STREAM_STEPS = 6


@pytest.fixture
def instance_file(tmp_path):
    """A small generated instance (seed 3) written as JSON; returns its path."""
    path = tmp_path / "instance.json"
    files.write_json(path, generate_instance(SMALL, seed=3).to_dict())
    return path


@pytest.fixture
def stream_file(tmp_path):
    """A small generated stream of STREAM_STEPS steps (seed 4) as JSON; returns its path."""
    path = tmp_path / "stream.json"
    files.write_json(path, generate_stream(SMALL, seed=4, steps=STREAM_STEPS).to_dict())
    return path
