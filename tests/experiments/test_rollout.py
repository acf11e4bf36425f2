"""Rollouts: paired, deterministic, episode-wrapping and exactly resumable step records."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dtasm_opt.core import files, records, simulator
from dtasm_opt.core.records import STEP_COLUMNS as COLUMNS
from dtasm_opt.core.records import TIMING_COLUMNS
from dtasm_opt.experiments import rollout as ro
from dtasm_opt.experiments.rollout import state_path, summarize
from dtasm_opt.rollout import main

MIX = "nearest,random,danearest,womig-stable,womig-dynamic"


def roll(stream_file, out, methods=MIX, *extra: str) -> int:
    return main([str(stream_file), "--methods", methods, "--out", str(out), "--quiet", *extra])


def values(path) -> list[tuple]:
    """Every row without the timing columns."""
    keep = [c for c in COLUMNS if c not in TIMING_COLUMNS]
    return [tuple(r[c] for c in keep) for r in records.read_rows(path)]


def of(rows: list[tuple], method: str) -> list[tuple]:
    return [r for r in rows if r[0] == method]


def test_columns_and_one_row_per_method_and_step(stream_file, tmp_path, capsys):
    out = tmp_path / "r.csv"
    args = [str(stream_file), "--methods", MIX, "--out", str(out), "--steps", "4"]
    assert main(args) == 0  # not --quiet: the summary table goes to stderr
    rows = records.read_rows(out)
    assert list(rows[0]) == list(COLUMNS)
    names = MIX.split(",")
    assert len(rows) == 4 * len(names)
    # Interleaved: every method does step t before any does t + 1.
    assert [(r["method"], int(r["step"])) for r in rows] == [
        (m, t) for t in range(4) for m in names
    ]
    err = capsys.readouterr().err
    assert all(name in err for name in names) and "cloud MB" in err


def test_rows_follow_the_simulator_step_by_step(stream_file, tmp_path):
    """An independent loop: nearest targets y each step; the servers carry over."""
    stream = files.read_stream(stream_file)
    out = tmp_path / "r.csv"
    assert roll(stream_file, out, "nearest") == 0
    server = stream.initial_server
    for t, row in enumerate(records.read_rows(out)):
        inst = stream.instance(t, server)
        step = simulator.apply(inst, inst.users.ran)
        server = step.final_server
        assert float(row["cloud_load_bytes"]) == step.cloud_load_bytes
        assert int(row["migrated"]) == step.migrated
        assert int(row["migration_failed"]) == step.migration_failed
        assert float(row["total_downtime_s"]) == step.total_downtime_s
    assert t == stream.n_steps - 1


def test_womig_stable_never_moves_anyone(stream_file, tmp_path):
    out = tmp_path / "r.csv"
    roll(stream_file, out, "womig-stable", "--steps", "9")
    assert {r["migrated"] for r in records.read_rows(out)} == {"0"}


def test_same_seed_same_csv_apart_from_timing(stream_file, tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    roll(stream_file, a, MIX, "--seed", "7")
    roll(stream_file, b, MIX, "--seed", "7")
    roll(stream_file, c, MIX, "--seed", "8")
    assert values(a) == values(b)
    assert of(values(a), "random") != of(values(c), "random")
    assert of(values(a), "nearest") == of(values(c), "nearest")


def test_adding_a_method_leaves_the_others_rows_identical(stream_file, tmp_path):
    alone, mixed = tmp_path / "alone.csv", tmp_path / "mixed.csv"
    roll(stream_file, alone, "random", "--seed", "3")
    roll(stream_file, mixed, "womig-dynamic,nearest,random", "--seed", "3")
    assert of(values(alone), "random") == of(values(mixed), "random")


def test_episode_wrap_restarts_from_the_initial_servers(stream_file, tmp_path):
    n = files.read_stream(stream_file).n_steps
    out = tmp_path / "r.csv"
    roll(stream_file, out, "nearest,danearest,womig-stable", "--steps", str(2 * n + 1))
    rows = records.read_rows(out)
    for name in ("nearest", "danearest", "womig-stable"):
        mine = [r for r in rows if r["method"] == name]
        assert [int(r["stream_step"]) for r in mine] == [t % n for t in range(2 * n + 1)]
        for t in (0, 1, n - 1):
            first, later = dict(mine[t]), dict(mine[t + n])
            for row in (first, later):
                del row["step"], row["decision_time_s"]
            assert first == later


def test_existing_csv_is_refused_without_resume(stream_file, tmp_path, capsys):
    out = tmp_path / "r.csv"
    roll(stream_file, out, "nearest", "--steps", "2")
    before = out.read_bytes()
    capsys.readouterr()
    assert roll(stream_file, out, "nearest", "--steps", "4") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err
    assert out.read_bytes() == before


def test_unknown_method_creates_no_file(stream_file, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert roll(stream_file, out, "nearest,bogus") == 2
    assert "bogus" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [stream_file]


@pytest.fixture
def reference(stream_file, tmp_path):
    """An uninterrupted 12-step run (past the 6-step stream's end) of every baseline."""
    out = tmp_path / "ref.csv"
    assert roll(stream_file, out, MIX, "--steps", "12", "--seed", "5") == 0
    return values(out)


def test_resume_after_a_shorter_run(stream_file, tmp_path, reference):
    out = tmp_path / "r.csv"
    assert roll(stream_file, out, MIX, "--steps", "5", "--seed", "5") == 0
    assert roll(stream_file, out, MIX, "--steps", "12", "--seed", "5", "--resume") == 0
    assert values(out) == reference


@pytest.mark.parametrize("calls", [3, 7, 13])
def test_resume_after_ctrl_c_mid_step(stream_file, tmp_path, reference, monkeypatch, calls):
    """Interrupted after ``calls`` simulator steps: mid-way through a rollout step."""
    real, seen = simulator.apply, []

    def flaky(inst, action):
        seen.append(1)
        if len(seen) > calls:
            raise KeyboardInterrupt
        return real(inst, action)

    out = tmp_path / "r.csv"
    monkeypatch.setattr(ro, "CHECKPOINT_S", 0.0)  # a checkpoint after every step
    monkeypatch.setattr(ro.simulator, "apply", flaky)
    assert roll(stream_file, out, MIX, "--steps", "12", "--seed", "5") == 130
    monkeypatch.setattr(ro.simulator, "apply", real)
    assert records.count_rows(out) == calls
    n = len(MIX.split(","))
    assert files.read_json(state_path(out))["rows"] == calls // n * n  # whole steps only
    assert roll(stream_file, out, MIX, "--steps", "12", "--seed", "5", "--resume") == 0
    assert values(out) == reference


def test_resume_after_a_kill_between_rows_and_checkpoint(stream_file, tmp_path, reference):
    """Mimic kill -9: a checkpoint older than the CSV, whose last line is torn."""
    out = tmp_path / "r.csv"
    roll(stream_file, out, MIX, "--steps", "3", "--seed", "5")
    old_state = state_path(out).read_bytes()
    roll(stream_file, out, MIX, "--steps", "8", "--seed", "5", "--resume")
    state_path(out).write_bytes(old_state)  # the checkpoint of step 3 survived, rows of 3..7 too
    with open(out, "ab") as fh:
        fh.write(b"nearest,8,2,12.5")  # and half a row
    assert roll(stream_file, out, MIX, "--steps", "12", "--seed", "5", "--resume") == 0
    assert values(out) == reference


def test_resume_after_a_kill_before_the_first_row(stream_file, tmp_path, reference):
    """Mimic kill -9 right after the start: the step-0 checkpoint and a torn header."""
    out = tmp_path / "r.csv"
    fresh = ro.Rollout(files.read_stream(stream_file), MIX.split(","), ro.MethodSettings(seed=5))
    files.write_json(state_path(out), fresh.state())
    out.write_bytes(b"method,st")
    assert roll(stream_file, out, MIX, "--steps", "12", "--seed", "5", "--resume") == 0
    assert values(out) == reference


@pytest.mark.parametrize(
    "change",
    [["--seed", "6"], ["--methods", "nearest,random"], ["--time-limit", "3"]],
)
def test_resume_with_other_arguments_is_refused(stream_file, tmp_path, capsys, change):
    out = tmp_path / "r.csv"
    roll(stream_file, out, MIX, "--steps", "3", "--seed", "5")
    before = out.read_bytes()
    capsys.readouterr()
    args = ["--steps", "6", "--seed", "5", "--resume", *change]
    assert roll(stream_file, out, MIX, *args) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert out.read_bytes() == before


def test_resume_without_checkpoint_is_refused(stream_file, tmp_path, capsys):
    out = tmp_path / "r.csv"
    roll(stream_file, out, "nearest", "--steps", "3")
    state_path(out).unlink()
    assert roll(stream_file, out, "nearest", "--steps", "6", "--resume") == 2
    assert "checkpoint" in capsys.readouterr().err


def test_summary_pools_downtime_over_migrated_users():
    rows = [
        {"method": "a", "cloud_load_bytes": 2**20, "total_downtime_s": 3.0, "migrated": 2,
         "migration_failed": 1, "rejected": 0, "users_on_edge": 5, "decision_time_s": 0.001},
        {"method": "a", "cloud_load_bytes": 3 * 2**20, "total_downtime_s": 1.0, "migrated": 6,
         "migration_failed": 0, "rejected": 2, "users_on_edge": 3, "decision_time_s": 0.003},
        {"method": "b", "cloud_load_bytes": 0, "total_downtime_s": 0.0, "migrated": 0,
         "migration_failed": 0, "rejected": 0, "users_on_edge": 8, "decision_time_s": 0.0},
    ]  # fmt: skip
    a, b = summarize(rows)
    assert a["method"] == "a" and a["steps"] == 2
    assert a["cloud_load_mb"] == 2.0
    assert math.isclose(a["downtime_ms"], 500.0)  # (3 + 1) s over 8 users, not mean(1.5, 1/6)
    assert (a["migrated"], a["migration_failed"], a["rejected"]) == (4.0, 0.5, 1.0)
    assert a["users_on_edge"] == 4.0 and math.isclose(a["decision_ms"], 2.0)
    assert b["downtime_ms"] == 0.0
    assert "a" in ro.format_summary([a, b]).splitlines()[1]


def test_library_summary_matches_the_csv(stream_file, tmp_path):
    out = tmp_path / "r.csv"
    roll(stream_file, out, "nearest,random")
    rows = records.read_rows(out)
    table = {s["method"]: s for s in summarize(rows)}
    mine = [r for r in rows if r["method"] == "random"]
    assert table["random"]["migrated"] == np.mean([int(r["migrated"]) for r in mine])


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume(stream_file, tmp_path):
    """A real SIGKILL of the CLI process, several times, then --resume to the end."""
    steps = "600"  # about 3 s: long enough for checkpoints between the kills
    ref = tmp_path / "ref.csv"
    assert roll(stream_file, ref, MIX, "--steps", steps, "--seed", "5") == 0
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "dtasm_opt.rollout", str(stream_file), "--methods", MIX]
    cmd += ["--out", str(out), "--steps", steps, "--seed", "5", "--quiet", "--resume"]
    rng = np.random.default_rng(11)
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = records.count_rows(out) if out.exists() else 0
        deadline = time.monotonic() + 20
        # Wait until it has written rows, then kill it at a random moment after that.
        while proc.poll() is None and time.monotonic() < deadline:
            if out.exists() and records.count_rows(out) > before:
                break
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0, 1.5)))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert values(out) == values(ref)


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "--resume" in capsys.readouterr().out
