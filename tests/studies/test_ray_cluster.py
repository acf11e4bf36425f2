"""A study through a Ray head started the way a user starts one (`ray start --head` on
127.0.0.1, Ray's default token authentication on), with --address: its rows equal the local
backend's. Runs in CI, which installs the ray extra."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
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


def running_cells() -> list[int]:
    """Ray worker processes executing a study cell (Ray titles them ``ray::_timed``)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes()
        except OSError:  # not a process, or gone meanwhile
            continue
        if title.startswith(b"ray::_timed"):
            found.append(int(proc.name))
    return found


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


SLOW_SPEC = """
[study]
name = "rayslow"
methods = ["nearest", "milp"]
seeds = [1, 2, 3, 4]
steps = 60
[scenario]
users = 160
servers = 8
"""  # the milp cells take seconds each: Ctrl-C finds them running


def test_ctrl_c_stops_a_ray_study_cleanly_and_it_resumes(head, tmp_path):
    """Ctrl-C on the driver (here through a cluster): exit 130 with one line, no Python or C++
    stack trace; the cells committed before it are kept and not run again."""
    address, env = head
    spec, out = tmp_path / "spec.toml", tmp_path / "out"
    spec.write_text(SLOW_SPEC)
    cmd = [sys.executable, "-m", "dtasm_opt.study", str(spec), "--backend", "ray",
           "--address", address, "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job ignores SIGINT; a terminal's Ctrl-C does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    ledger = out / "cells.jsonl"
    deadline = time.monotonic() + 300
    while not (ledger.exists() and ledger.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "no cell committed"
        time.sleep(0.2)
    assert running_cells(), "the probe for running cells sees none before Ctrl-C"
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err[-3000:]
    assert err.rstrip().endswith("interrupted")
    assert "Traceback" not in err and "Stack trace" not in err and "***" not in err
    kept = ledger.read_text().count("\n")
    assert 1 <= kept < 8
    # The cluster stops the tasks of a driver that let go: no worker keeps running a cell.
    # (a cell runs for seconds; one left running would still be there after this second)
    deadline = time.monotonic() + 1
    while running_cells() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running_cells()
    # A cell whose part file was written when Ctrl-C came, before its ledger line (the commit
    # protocol's first step), counts as complete on resume too (seen under load).
    listed = {json.loads(line)["part"] for line in ledger.read_text().splitlines()}
    written = [p for p in (out / "parts").glob("*.csv") if p.name not in listed]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    complete = kept + len(written)
    assert f"{complete} of 8 cells already complete" in again.stderr, again.stderr[:1500]
    assert len(records.read_rows(out / "results.csv")) == 8 * 60
