"""Shared small fixtures: Table II instances and streams small enough for fast CLI tests."""

from __future__ import annotations

import pytest

from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream

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
