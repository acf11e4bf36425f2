"""docs/tutorial.md is executable documentation: its Python blocks run, in order, in one
namespace, in an empty folder."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"


def test_every_code_block_of_the_tutorial_runs(tmp_path, monkeypatch):
    pytest.importorskip("stable_baselines3")
    blocks = re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, block in enumerate(blocks):
            exec(compile(block, f"{TUTORIAL.name} block {i + 1}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "my_td3.zip").exists() and (tmp_path / "rollout.csv").exists()
    assert namespace["result"].bound_mb is not None
