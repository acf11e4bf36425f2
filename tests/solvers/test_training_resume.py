"""Resuming TD3 training after a kill: exactly one row per step, equal to a straight run.

A kill can leave ``steps.csv`` with rows written after the last checkpoint and a last line
torn anywhere (mid-number, mid-column, right after a comma). Resume must cut the log back to
the checkpoint's step, drop the torn line, and redo those steps exactly once.
"""

from __future__ import annotations

import pytest

from dtasm_opt.core import records
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.errors import InputError
from dtasm_opt.solvers.td3.config import TD3Config
from dtasm_opt.solvers.td3.training import COLUMNS, train
from dtasm_opt.train import main

STEPS, EVERY = 24, 10
CFG = TD3Config(hidden=(16,), buffer_size=64, batch_size=8, learning_starts=4, seed=3)


def stream():
    return generate_stream(Scenario(users=6, servers=2, apps=2), seed=4, steps=5)


def comparable(folder) -> list[dict]:
    """The log's rows without the timing columns (the only ones that differ between runs)."""
    return [
        {k: v for k, v in r.items() if k not in records.TIMING_COLUMNS}
        for r in records.read_rows(folder / "steps.csv")
    ]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    train(stream(), CFG, out, STEPS, checkpoint_every=EVERY, progress=False)
    return comparable(out)


def killed_log(tmp_path, cut_after: int, torn: bytes):
    """A run stopped after ``cut_after`` steps (last checkpoint at the EVERY multiple below),
    its log ending in ``torn``: the first bytes of the next row."""
    out = tmp_path / "run"
    train(stream(), CFG, out, cut_after, checkpoint_every=EVERY, progress=False)
    log = out / "steps.csv"
    with open(log, "ab") as fh:
        fh.write(torn)
    return out


def next_row_prefixes(straight_rows: list[dict], step: int) -> list[bytes]:
    """Tears of the row of ``step`` at several byte positions: 1 byte, after 'td3,', inside
    a float, just before the newline."""
    line = ",".join(records.cell(straight_rows[step].get(c) or None) for c in COLUMNS)
    data = line.encode()
    return [data[:1], b"td3,", data[: len(data) // 2], data[:-1]]


@pytest.mark.parametrize("cut_after", [EVERY, EVERY + 3, 2 * EVERY + 1])
@pytest.mark.parametrize("tear", range(4))
def test_torn_last_line_resumes_to_one_row_per_step(tmp_path, straight, cut_after, tear):
    out = killed_log(tmp_path, cut_after, next_row_prefixes(straight, cut_after)[tear])
    train(stream(), CFG, out, STEPS, resume=True, checkpoint_every=EVERY, progress=False)
    rows = comparable(out)
    assert [int(r["step"]) for r in rows] == list(range(STEPS))
    assert rows == straight


def test_resume_through_the_cli_after_a_torn_line(tmp_path, straight):
    path = tmp_path / "s.json"
    from dtasm_opt.core import files

    files.write_json(path, stream().to_dict())
    out = tmp_path / "cli"
    flags = ["--hidden", "16", "--buffer-size", "64", "--batch-size", "8"]
    flags += ["--learning-starts", "4", "--seed", "3", "--checkpoint-every", str(EVERY)]
    base = [str(path), "--out", str(out), "--no-progress", *flags]
    assert main([*base, "--steps", str(EVERY + 2)]) == 0
    with open(out / "steps.csv", "ab") as fh:
        fh.write(b"td3,")
    assert main([*base, "--steps", str(STEPS), "--resume"]) == 0
    assert comparable(out) == straight


def test_log_columns_are_the_step_record_columns_plus_training(tmp_path):
    train(stream(), CFG, tmp_path, 3, checkpoint_every=3, progress=False)
    header = (tmp_path / "steps.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == records.STEP_COLUMNS + records.TRAINING_COLUMNS


def test_a_second_fresh_run_into_a_used_folder_is_refused(tmp_path):
    train(stream(), CFG, tmp_path, 3, checkpoint_every=3, progress=False)
    with pytest.raises(InputError, match="--resume"):
        train(stream(), CFG, tmp_path, 3, checkpoint_every=3, progress=False)
