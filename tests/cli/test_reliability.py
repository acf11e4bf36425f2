"""Issue 12, item by item: one writer per output, every input checked before work starts,
bounded sizes, no orphans. Each test reproduces the fault as the issue describes it."""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dtasm_opt import bound, generate, rollout, solve, study, verify
from dtasm_opt.core import files, records
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]
PY = [sys.executable, "-m"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0] and ".tmp" not in err[0]
    return err[0]


@pytest.fixture
def stream_path(tmp_path) -> Path:
    path = tmp_path / "s.json"
    files.write_json(path, generate_stream(Scenario(users=20, servers=3), 1, 40).to_dict())
    return path


@pytest.fixture
def inst_path(tmp_path) -> Path:
    path = tmp_path / "i.json"
    files.write_json(path, generate_instance(Scenario(users=20, servers=3), 1).to_dict())
    return path


# ---- 1. one writer per output ------------------------------------------------------------


def second_writer_is_refused(first_cmd: list[str], second_cmd: list[str], lock: Path, cwd):
    """Start the first writer, wait until it holds ``lock``, run the second: refused at once
    with exit 2 and one line naming the holder, while the first keeps running to exit 0."""
    first = subprocess.Popen(
        PY + first_cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lock.exists(), first.stderr.read() if first.poll() is not None else "no lock"
        second = subprocess.run(PY + second_cmd, cwd=cwd, capture_output=True, text=True)
        assert first.poll() is None, "the first writer ended too early for the test"
        err = second.stderr.strip().splitlines()
        assert second.returncode == 2, second.stderr
        assert len(err) == 1 and "in use by another run" in err[0] and "pid" in err[0], err
        assert str(first.pid) in err[0]
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not lock.exists()  # released (removed) by the writer that finished


def test_two_rollouts_on_one_csv(tmp_path, stream_path):
    out = tmp_path / "c.csv"
    cmd = ["dtasm_opt.rollout", str(stream_path), "--methods", "random", "--quiet"]
    cmd += ["--out", str(out), "--steps", "8000"]
    second_writer_is_refused(cmd, [*cmd, "--resume"], Path(f"{out}.lock"), tmp_path)
    steps = [int(r["step"]) for r in records.read_rows(out)]
    assert steps == list(range(8000))  # exact rows: none lost, none duplicated


def test_two_studies_on_one_folder(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[study]\nname = "two"\nmethods = ["random", "nearest"]\nseeds = [1, 2, 3]\n'
        "steps = 1500\n[scenario]\nusers = 20\nservers = 3\n"
    )
    out = tmp_path / "out"
    cmd = ["dtasm_opt.study", str(spec), "--out", str(out)]
    second_writer_is_refused(cmd, cmd, out / ".lock", tmp_path)
    rows = records.read_rows(out / "results.csv")
    keys = [(r["method"], r["seed"], int(r["step"])) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 3 * 1500
    assert (out / "cells.jsonl").read_text().count("\n") == 6


def test_two_trainings_on_one_folder(tmp_path, stream_path):
    out = tmp_path / "run"
    cmd = ["dtasm_opt.train", str(stream_path), "--out", str(out), "--no-progress"]
    cmd += ["--steps", "2500", "--hidden", "64,64", "--batch-size", "16"]
    second_writer_is_refused(cmd, [*cmd, "--resume"], out / ".lock", tmp_path)
    steps = [int(r["step"]) for r in records.read_rows(out / "steps.csv")]
    assert steps == list(range(2500))


def test_two_set_writers_on_one_folder(tmp_path):
    out = tmp_path / "set"
    cmd = ["dtasm_opt.generate", "--users", "260", "--servers", "8", "--seed", "1"]
    cmd += ["--set", str(out), "--count", "3", "--method", "cpsat", "--time-limit", "1"]
    second_writer_is_refused(cmd, cmd, out / ".lock", tmp_path)
    names = [e["name"] for e in files.read_json(out / "manifest.json")["instances"]]
    assert names == [f"u260-h8-{i:03d}" for i in range(3)]


def test_two_bound_writers_on_one_file(tmp_path):
    path = tmp_path / "s.json"
    files.write_json(path, generate_stream(Scenario(users=60, servers=4), 1, 120).to_dict())
    out = tmp_path / "b.json"
    cmd = ["dtasm_opt.bound", str(path), "--window", "2", "--quiet", "--out", str(out)]
    second_writer_is_refused(cmd, [*cmd, "--resume"], Path(f"{out}.lock"), tmp_path)
    doc = files.read_json(out)
    assert doc["complete"] and [w["start"] for w in doc["windows"]] == list(range(0, 120, 2))


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path, stream_path, capsys):
    out = tmp_path / "c.csv"
    cmd = PY + ["dtasm_opt.rollout", str(stream_path), "--methods", "random", "--quiet"]
    cmd += ["--out", str(out), "--steps", "20000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = Path(f"{out}.lock")
    while not (lock.exists() and out.exists() and records.count_rows(out) > 100):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert lock.exists()  # left behind by the killed writer, but no longer locked
    args = [str(stream_path), "--methods", "random", "--quiet", "--out", str(out)]
    assert rollout.main([*args, "--steps", "20000", "--resume"]) == 0
    assert [int(r["step"]) for r in records.read_rows(out)] == list(range(20000))
    assert not lock.exists()


# ---- 2. the whole study spec is checked before any work -----------------------------------

BAD_SPECS = {
    "backend": '[method.milp]\nbackend = "bogus"',
    "second_stage": '[method.milp]\nsecond_stage = "sideways"',
    "hidden": "[method.td3]\nhidden = [0]",
    "gamma": "[method.td3]\ngamma = 2.0",
    "batch_size": "[method.td3]\nbatch_size = 0",
    "teacher": '[method.td3]\nteacher = "nobody"\nwarm_start_steps = 3',
    "users": "[scenario]\nusers = 1000000000000",
}


@pytest.mark.parametrize("field", sorted(BAD_SPECS))
def test_a_bad_spec_is_refused_before_any_folder(tmp_path, capsys, field):
    body = BAD_SPECS[field]
    scenario = "" if body.startswith("[scenario]") else "[scenario]\nusers = 20\nservers = 3\n"
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[study]\nname = "bad"\nmethods = ["nearest", "milp", "td3"]\nseeds = [1]\nsteps = 3\n'
        + scenario
        + body
        + "\n"
    )
    out = tmp_path / "out"
    assert study.main([str(spec), "--out", str(out)]) == 2
    assert field in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("label", "what"),
    [('"a\\nb"', "plain label"), ('"a,b"', "plain label"), ('"td3:missing.pt"', "no such")],
)
def test_bad_labels_and_missing_checkpoints_are_refused(tmp_path, capsys, label, what):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[study]\nname = "bad"\nmethods = [{label}]\nseeds = [1]\nsteps = 3\n'
        "[scenario]\nusers = 20\nservers = 3\n"
    )
    assert study.main([str(spec), "--out", str(tmp_path / "out")]) == 2
    assert what in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_another_system_is_refused_before_the_study(tmp_path, capsys):
    from dtasm_opt.solvers.td3.config import TD3Config
    from dtasm_opt.solvers.td3.training import train

    other = generate_stream(Scenario(users=20, servers=3), seed=9, steps=3)
    train(other, TD3Config(hidden=(8,), batch_size=2), tmp_path / "t", 3, progress=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[study]\nname = "x"\nmethods = ["td3:{tmp_path / "t" / "policy.pt"}"]\n'
        "seeds = [1]\nsteps = 3\n[scenario]\nusers = 20\nservers = 3\n"
    )
    assert study.main([str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "trained on another system" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


# ---- 3. train: early checkpoint, resumable from the start ---------------------------------


def test_a_training_killed_before_its_first_periodic_checkpoint_resumes(tmp_path, stream_path):
    out = tmp_path / "run"
    base = [str(stream_path), "--out", str(out), "--no-progress", "--hidden", "8"]
    base += ["--batch-size", "4", "--checkpoint-every", "100000"]
    cmd = PY + ["dtasm_opt.train", *base, "--steps", "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "steps.csv"
    while not (log.exists() and records.count_rows(log) >= 30):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert train_main([*base, "--steps", "60", "--resume"]) == 0
    assert [int(r["step"]) for r in records.read_rows(log)] == list(range(60))


def test_a_failed_checkpoint_write_is_one_line_and_leaves_no_temporary_file(
    tmp_path, stream_path, capsys, monkeypatch
):
    import torch

    def full_disk(obj, fh, *a, **k):
        fh.write(b"x" * 1000)
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "run"
    args = [str(stream_path), "--out", str(out), "--steps", "3", "--no-progress"]
    assert train_main(args) == 2
    assert "cannot write the checkpoint" in one_error_line(capsys)
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# ---- 4. a checkpoint with the right tag and missing keys ----------------------------------


@pytest.mark.parametrize("missing", ["config", "system", "obs_dim", "agent", "system.users"])
def test_checkpoints_missing_keys_are_refused_everywhere(
    tmp_path, stream_path, inst_path, capsys, missing
):
    from dtasm_opt.solvers.td3 import checkpoint
    from dtasm_opt.solvers.td3.config import TD3Config
    from dtasm_opt.solvers.td3.training import train

    run = tmp_path / "run"
    train(files.read_stream(stream_path), TD3Config(hidden=(8,), batch_size=2), run, 3,
          progress=False)  # fmt: skip
    for name in ("last.pt", "policy.pt"):
        doc = checkpoint.load(run / name)
        if "." in missing:
            del doc["system"][missing.split(".")[1]]
        else:
            del doc[missing]
        doc.pop("format")
        checkpoint.save(run / name, doc)
    policy = f"td3:{run / 'policy.pt'}"
    assert solve.main([str(inst_path), "--method", policy]) == 2
    assert missing.split(".")[-1] in one_error_line(capsys)
    out = tmp_path / "c.csv"
    assert rollout.main([str(stream_path), "--methods", policy, "--out", str(out)]) == 2
    one_error_line(capsys)
    assert not out.exists()
    args = [str(stream_path), "--out", str(run), "--steps", "5", "--resume", "--no-progress"]
    assert train_main(args) == 2
    one_error_line(capsys)


# ---- 5. pool workers die with their parent ------------------------------------------------


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return set(map(int, path.read_text().split())) if path.exists() else set()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_killing_a_study_kills_its_pool_workers(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[study]\nname = "w"\nmethods = ["random", "nearest"]\nseeds = [1, 2]\n'
        "steps = 200000\n[scenario]\nusers = 20\nservers = 3\n"
    )
    cmd = PY + ["dtasm_opt.study", str(spec), "--out", str(tmp_path / "o"), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while len(workers) < 2 and time.monotonic() < deadline:
        workers = children(proc.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the pool did not start"
    time.sleep(0.5)  # the workers are inside their cells
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert left == []


# ---- 6. sizes are bounded -----------------------------------------------------------------


def test_a_gzip_bomb_is_refused_without_reading_it_whole(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1_000_000)
    bomb = tmp_path / "b.json.gz"
    bomb.write_bytes(gzip.compress(b" " * 5_000_000 + b"{}"))
    assert bomb.stat().st_size < 20_000
    assert solve.main([str(bomb)]) == 2
    assert "larger than" in one_error_line(capsys)


@pytest.mark.parametrize(
    "args",
    [
        ["--servers", "100000", "--users", "10"],
        ["--apps", "1000000000", "--users", "10", "--servers", "2"],
        ["--users", "10000000", "--servers", "2"],
        ["--users", "100000", "--servers", "2", "--steps", "1000"],
        ["--users", "10", "--servers", "2", "--steps", "1000000000"],
    ],
)
def test_generate_refuses_sizes_past_the_bounds(tmp_path, capsys, args):
    out = tmp_path / "x.json"
    assert generate.main([*args, "--seed", "1", "--out", str(out)]) == 2
    assert "too large" in one_error_line(capsys)
    assert not out.exists()


def test_a_file_with_too_many_users_is_refused(tmp_path, capsys, inst_path, monkeypatch):
    from dtasm_opt.core import instance

    monkeypatch.setattr(instance, "MAX_USERS", 10)
    assert solve.main([str(inst_path), "--method", "nearest"]) == 2
    assert "too large" in one_error_line(capsys)


def test_runs_and_studies_refuse_absurd_lengths(tmp_path, capsys, stream_path):
    out = tmp_path / "c.csv"
    args = [str(stream_path), "--methods", "nearest", "--out", str(out), "--steps", "10**9"]
    assert rollout.main([*args[:-1], "1000000000"]) == 2
    one_error_line(capsys)
    assert not out.exists()
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[study]\nname = "x"\nmethods = ["nearest"]\nseeds = [1]\nsteps = 1000000000000\n'
        "[scenario]\nusers = 20\nservers = 3\n"
    )
    assert study.main([str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "too large" in one_error_line(capsys)
    spec.write_text(
        '[study]\nname = "x"\nmethods = ["nearest"]\nseeds = '
        + json.dumps(list(range(1001)))
        + '\nsteps = 1\n[sweep]\naxis = "xi"\nvalues = '
        + json.dumps([0.1 * i for i in range(1, 201)])
        + "\n"
    )
    assert study.main([str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "cells" in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


# ---- 7., 8. set names, gamma shape --------------------------------------------------------


def test_a_set_name_cannot_leave_its_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--users", "20", "--servers", "3", "--seed", "1", "--set", "a/b/s", "--count", "1"]
    assert generate.main([*args, "--name", "../../../X"]) == 2
    assert "--name" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_gamma_shape_is_refused(tmp_path, capsys):
    out = tmp_path / "x.json"
    args = ["--users", "20", "--servers", "3", "--seed", "1", "--out", str(out)]
    assert generate.main([*args, "--gamma-shape", "1e-320"]) == 2
    assert "gamma-shape" in one_error_line(capsys)
    assert not out.exists()


# ---- 9. solve's outputs -------------------------------------------------------------------


def test_write_model_keeps_stdout_pure_json(inst_path, tmp_path, capsys):
    assert solve.main([str(inst_path), "--write-model", str(tmp_path / "m.lp")]) == 0
    doc = json.loads(capsys.readouterr().out)  # nothing but the solution on stdout
    assert doc["format"] == "dtasm-solution/1"
    assert (tmp_path / "m.lp").read_text().startswith("\\* Source Pyomo model")


def test_bad_output_paths_are_refused_before_solving(inst_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(solve, "judge", lambda *a, **k: pytest.fail("solved anyway"))
    assert solve.main([str(inst_path), "--out", str(tmp_path / "nodir" / "x.json")]) == 2
    assert "does not exist" in one_error_line(capsys)
    (tmp_path / "adir").mkdir()
    assert solve.main([str(inst_path), "--out", str(tmp_path / "adir")]) == 2
    assert "is a directory" in one_error_line(capsys)
    assert solve.main([str(inst_path), "--write-model", str(tmp_path / "adir")]) == 2
    one_error_line(capsys)


def test_bound_refuses_a_directory_without_naming_a_temporary_file(stream_path, tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    assert bound.main([str(stream_path), "--out", str(tmp_path / "adir"), "--quiet"]) == 2
    assert "is a directory" in one_error_line(capsys)


# ---- 10. verify, rollout state, wrong-system policies ---------------------------------------


def test_verify_refuses_a_nan_bound(inst_path, tmp_path, capsys):
    sol = tmp_path / "s.json"
    assert solve.main([str(inst_path), "--method", "nearest", "--out", str(sol)]) == 0
    doc = json.loads(sol.read_text())
    doc["bound_bytes"] = math.nan
    sol.write_text(json.dumps(doc))  # Python writes NaN, as a hostile file might
    capsys.readouterr()
    assert verify.main([str(inst_path), str(sol)]) == 1
    assert "bound_bytes" in capsys.readouterr().out


def test_a_rollout_state_with_a_negative_step_is_refused(stream_path, tmp_path, capsys):
    out = tmp_path / "c.csv"
    args = [str(stream_path), "--methods", "nearest", "--out", str(out), "--quiet"]
    assert rollout.main([*args, "--steps", "5"]) == 0
    capsys.readouterr()
    state = Path(f"{out}.state.json")
    doc = json.loads(state.read_text())
    doc["next_step"] = -5
    state.write_text(json.dumps(doc))
    before = out.read_bytes()
    assert rollout.main([*args, "--steps", "8", "--resume"]) == 2
    assert "next_step" in one_error_line(capsys)
    assert out.read_bytes() == before


def test_a_wrong_system_policy_leaves_no_csv(stream_path, tmp_path, capsys):
    from dtasm_opt.solvers.td3.config import TD3Config
    from dtasm_opt.solvers.td3.training import train

    other = generate_stream(Scenario(users=20, servers=3), seed=9, steps=3)
    train(other, TD3Config(hidden=(8,), batch_size=2), tmp_path / "t", 3, progress=False)
    out = tmp_path / "c.csv"
    method = f"td3:{tmp_path / 't' / 'policy.pt'}"
    assert rollout.main([str(stream_path), "--methods", method, "--out", str(out)]) == 2
    assert "trained on another system" in one_error_line(capsys)
    assert not out.exists() and not Path(f"{out}.state.json").exists()
    assert rollout.main([str(stream_path), "--methods", "nearest", "--out", str(out)]) == 0


def test_a_stream_without_users_is_refused_by_train(tmp_path, stream_path, capsys):
    doc = files.read_json(stream_path)
    doc["users"] = {k: [] for k in doc["users"]}
    doc["steps"] = {k: [[]] for k in doc["steps"]}
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(doc))
    out = tmp_path / "run"
    assert train_main([str(empty), "--out", str(out), "--steps", "3", "--no-progress"]) == 2
    assert "at least one user" in one_error_line(capsys)
    assert not out.exists()
