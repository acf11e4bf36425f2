"""A study through a Ray head started the way a user starts one (`ray start --head` on
127.0.0.1, Ray's default token authentication on), with --address: its rows equal the local
backend's. Runs in CI, which installs the ray extra."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dtasm_opt.core import records
from dtasm_opt.core.records import TIMING_COLUMNS

pytest.importorskip("ray")
RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
SPEC = """
[study]
name = "raytiny"
methods = ["random", "nearest", "milp"]
seeds = [1, 2]
steps = 4
[scenario]
users = 20
servers = 3
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    if not Path(RAY).exists():
        pytest.skip("the ray command is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # A token in ~/.ray/auth_token, as any earlier local ray.init() leaves: `ray start --head`
    # then turns token authentication on, Ray's default.
    subprocess.run([RAY, "get-auth-token", "--generate"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    port = free_port()
    cmd = [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}"]
    cmd += ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=180)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def comparable(path: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in records.read_rows(path)
    ]


def test_a_study_through_a_local_head_equals_the_local_backend(head, tmp_path):
    address, env = head
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-m", "dtasm_opt.study", str(spec), "--backend", "ray"]
    done = subprocess.run([*cmd, "--address", address, "--out", str(tmp_path / "ray")],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Ray cluster at" in done.stderr  # the header names the cluster, not a worker count
    local = [sys.executable, "-m", "dtasm_opt.study", str(spec), "--out", str(tmp_path / "local")]
    assert subprocess.run(local, env=env, capture_output=True, timeout=600).returncode == 0
    rows = comparable(tmp_path / "ray" / "results.csv")
    assert len(rows) == 3 * 2 * 4
    assert rows == comparable(tmp_path / "local" / "results.csv")
