"""The study runner after an interruption: a kill mid-run, a crash at each commit step, a
failing cell, and a rollout cell continued from its partial file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_study import N_CELLS, ROOT, TINY, quiet, rows_of, write

from dtasm_opt.core.records import TIMING_COLUMNS
from dtasm_opt.errors import InputError
from dtasm_opt.studies.folder import StudyDir
from dtasm_opt.studies.runner import run_study
from dtasm_opt.studies.spec import load


def test_kill_mid_run_and_resume_loses_and_duplicates_nothing(tmp_path):
    # Cells long enough (~0.1 s each) that the kill lands mid-study.
    spec_path = write(tmp_path, TINY.replace("steps = 5", "steps = 120"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dtasm_opt.study", str(spec_path), "--out", str(out)]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    ledger = out / "cells.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ledger.exists() and ledger.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.005)
    finally:
        alive = proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = ledger.read_bytes().count(b"\n")
    assert alive and 2 <= done < N_CELLS, "the study was not killed mid-run"
    resumed = run_study(load(spec_path), out, log=quiet)
    assert resumed["skipped"] >= done and resumed["failed"] == {}
    rows = rows_of(out / "results.csv")
    run_study(load(spec_path), tmp_path / "reference", log=quiet)  # uninterrupted
    assert rows == rows_of(tmp_path / "reference/results.csv")
    assert len(rows) == N_CELLS * 120
    assert (out / "cells.jsonl").read_bytes().count(b"\n") == N_CELLS


@pytest.mark.parametrize("crash", ["after_part", "after_append", "torn_append", "torn_ledger"])
def test_resume_after_a_crash_at_each_commit_step(tmp_path, crash):
    """Recreate on disk the state a kill leaves between (or inside) the commit steps."""
    spec_path = write(tmp_path, TINY)
    spec = load(spec_path)
    out = tmp_path / "out"
    run_study(spec, out, log=quiet)
    sd = StudyDir(spec, out)
    ledger = (out / "cells.jsonl").read_bytes().splitlines(keepends=True)
    last = json.loads(ledger[-1])
    before = json.loads(ledger[-2])["end"]
    results = (out / "results.csv").read_bytes()
    if crash == "after_part":  # part renamed into place; neither appended nor in the ledger
        (out / "results.csv").write_bytes(results[:before])
        (out / "cells.jsonl").write_bytes(b"".join(ledger[:-1]))
    elif crash == "after_append":  # appended, ledger line missing
        (out / "cells.jsonl").write_bytes(b"".join(ledger[:-1]))
    elif crash == "torn_append":  # killed in the middle of the append
        (out / "results.csv").write_bytes(results[: before + 17])
        (out / "cells.jsonl").write_bytes(b"".join(ledger[:-1]))
    else:  # killed in the middle of the ledger line
        (out / "cells.jsonl").write_bytes(b"".join(ledger[:-1]) + ledger[-1][:10])
    (out / "parts" / f".{last['part']}.tmp").write_text("half a part")  # a torn next part
    r = run_study(spec, out, log=quiet)
    assert (r["ran"], r["failed"]) == (0, {})  # the completed cell came from its part file
    assert (out / "results.csv").read_bytes() == results
    assert not list((out / "parts").glob(".*.tmp"))
    assert len(sd.cells) == (out / "cells.jsonl").read_bytes().count(b"\n")


def test_a_failing_cell_does_not_stop_the_others(tmp_path, monkeypatch):
    spec = load(write(tmp_path, TINY))
    import dtasm_opt.studies.backends as study_run

    real = study_run.run_cell_safe

    def flaky(spec, cell, progress=None, partial=None):
        if cell.method == "random" and cell.seed == 2:
            return False, "boom"
        return real(spec, cell, progress, partial)

    monkeypatch.setattr(study_run, "run_cell_safe", flaky)
    r = run_study(spec, tmp_path / "out", log=quiet)
    assert len(r["failed"]) == 2 and r["ran"] == N_CELLS - 2
    monkeypatch.setattr(study_run, "run_cell_safe", real)
    r = run_study(spec, tmp_path / "out", log=quiet)  # a rerun retries only the failed cells
    assert (r["ran"], r["skipped"]) == (2, N_CELLS - 2)
    assert rows_of(tmp_path / "out/results.csv") == rows_of_fresh(tmp_path, spec)


def rows_of_fresh(tmp_path: Path, spec) -> list[dict]:
    run_study(spec, tmp_path / "fresh", log=quiet)
    return rows_of(tmp_path / "fresh/results.csv")


class _Stop(Exception):
    """Stands for a kill in the middle of a cell."""


def _untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


def _interrupted(spec, cell, partial: Path, at: int) -> None:
    """Run ``cell`` saving after every step, and stop it as its row ``at`` is made."""
    from dtasm_opt.studies import cells

    def stop(rows: int) -> None:
        if rows == at:
            raise _Stop

    with pytest.raises(_Stop):
        cells.run_cell(spec, cell, stop, partial)


def test_an_interrupted_rollout_cell_continues_from_its_partial_file(tmp_path, monkeypatch):
    """A rollout cell keeps its rows and its rollout's state (servers, the method's Generator)
    as it goes; run again, it continues from there and ends with the rows of an uninterrupted
    run. A file of another cell is ignored, a damaged one named."""
    from dtasm_opt.studies import cells
    from dtasm_opt.studies.folder import partial_file

    monkeypatch.setattr(cells, "PARTIAL_S", 0.0)  # save after every step
    spec = load(write(tmp_path, TINY.replace("steps = 5", "steps = 40")))
    cell = next(c for c in spec.cells() if c.method == "random")  # draws from its Generator
    reference = _untimed(cells.run_cell(spec, cell))
    partial = tmp_path / partial_file(spec, cell)
    _interrupted(spec, cell, partial, at=25)
    doc = json.loads(partial.read_text())
    assert doc["state"]["next_step"] == 24 and len(doc["rows"]) == 24
    seen: list[int] = []
    rows = cells.run_cell(spec, cell, seen.append, partial)
    assert seen[0] == 25  # 24 rows from the file, then the 25th computed
    assert _untimed(rows) == reference
    other = next(c for c in spec.cells() if c.method == "random" and c != cell)
    assert _untimed(cells.run_cell(spec, other, None, partial)) == _untimed(
        cells.run_cell(spec, other)
    )
    partial.write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="damaged"):
        cells.run_cell(spec, cell, None, partial)


def test_a_study_resumes_a_cell_from_its_partial_file_and_removes_it(tmp_path, monkeypatch):
    from dtasm_opt.studies import cells
    from dtasm_opt.studies.folder import partial_file

    monkeypatch.setattr(cells, "PARTIAL_S", 0.0)
    spec = load(write(tmp_path, TINY.replace("steps = 5", "steps = 30")))
    out = tmp_path / "out"
    (out / "parts").mkdir(parents=True)
    cell = next(c for c in spec.cells() if c.method == "womig-dynamic")
    _interrupted(spec, cell, out / "parts" / partial_file(spec, cell), at=12)
    run_study(spec, out, log=quiet)
    run_study(spec, tmp_path / "reference", log=quiet)
    assert rows_of(out / "results.csv") == rows_of(tmp_path / "reference/results.csv")
    assert not list((out / "parts").glob("*.partial.json"))
