"""``study --status DIR``: where a study folder stands, read without its lock."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_study import write

from dtasm_opt import study
from dtasm_opt.solvers import registry
from dtasm_opt.studies.cells import PARTIAL_FORMAT
from dtasm_opt.studies.folder import cell_file, partial_file
from dtasm_opt.studies.spec import load
from dtasm_opt.studies.status import CellProgress, StudyStatus, format_status, read_status

SPEC = """
[study]
name = "st"
methods = ["nearest", "milp"]
seeds = [1, 2]
steps = 5
last = 3
stage2_columns = true

[scenario]
users = 30
servers = 3
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete study folder, and its spec file."""
    tmp = tmp_path_factory.mktemp("status")
    spec = write(tmp, SPEC)
    out = tmp / "out"
    assert study.main([str(spec), "--out", str(out), "--quiet", "--no-plots"]) == 0
    return spec, out


def status_text(capsys, folder) -> str:
    capsys.readouterr()
    assert study.main(["--status", str(folder)]) == 0
    return capsys.readouterr().out


def test_a_complete_study_and_its_proofs_counted_from_its_rows(finished, capsys):
    _, out = finished
    text = status_text(capsys, out)
    assert "st in " in text and "4 of 4 cells complete, 20 of 20 rows (100.0 %)" in text
    assert "writer: none" in text
    with open(out / "results.csv", newline="") as fh:
        milp = [r for r in csv.DictReader(fh) if r["method"] == "milp"]
    load_ok = sum(r["status"] == "optimal" for r in milp)
    tie_ok = sum(r["stage2_status"] == "optimal" for r in milp)
    assert len(milp) == 10 and load_ok > 0
    assert f"milp: 10 of 10 rows; load stage proven on {load_ok}, tie-break on {tie_ok}" in text
    assert "nearest:" not in text  # complete, nothing to prove
    assert "wall-clock" not in text  # no safety net stopped a step


def test_steps_a_wall_clock_limit_stopped_are_counted(tmp_path, capsys):
    """A safety net that binds makes a row depend on the machine's load: the run's line for
    the cell and the status both count such steps. A limit of a microsecond stops every
    HiGHS load stage that presolve does not settle."""
    spec = write(tmp_path, SPEC.replace('"nearest", ', "").replace("[1, 2]", "[1]")
                 + "\n[method.milp]\ntime_limit_s = 1e-6\n")  # fmt: skip
    out = tmp_path / "out"
    capsys.readouterr()
    assert study.main([str(spec), "--out", str(out), "--no-plots"]) == 0
    with open(out / "results.csv", newline="") as fh:
        stopped = sum("time_limit" in (r["status"], r["stage2_status"]) for r in csv.DictReader(fh))
    assert 1 < stopped <= 5  # a step that HiGHS's presolve settles is not stopped
    assert "5 rows in" in (err := capsys.readouterr().err)
    assert f"; {stopped} steps stopped by a wall-clock limit (may not repeat)" in err
    text = status_text(capsys, out)
    assert "milp: 5 of 5 rows;" in text and f"; {stopped} steps stopped by a wall-clock" in text


def test_complete_cells_of_an_older_revision_are_named(finished, capsys, monkeypatch):
    """A method whose decisions moved since its cells ran (its registry revision raised):
    the status names how many of its complete cells are older."""
    _, out = finished
    bumped = dataclasses.replace(registry.info("milp"), revision=1)
    monkeypatch.setitem(registry._BY_NAME, "milp", bumped)
    text = status_text(capsys, out)
    assert "; 2 complete cells from an older revision of the method" in text
    assert "nearest:" not in text  # its revision did not move


def test_unfinished_cells_show_their_saved_rows(finished, tmp_path, capsys):
    """A cell the ledger does not list is open: its saved progress counts (rows and the time
    it was saved) where the file belongs to this spec's cell, and not where it does not."""
    spec_path, done = finished
    spec = load(spec_path)
    out = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(done), str(out)], check=True)
    ledger = (out / "cells.jsonl").read_text().splitlines(keepends=True)
    dropped = [json.loads(line)["key"] for line in ledger[-2:]]
    (out / "cells.jsonl").write_text("".join(ledger[:-2]))
    cells = {c.key(spec.axis): c for c in spec.cells()}
    saved, foreign = (cells[k] for k in dropped)
    with open(out / "parts" / cell_file(spec, saved), newline="") as fh:
        rows = list(csv.DictReader(fh))[:2]
    for cell, fingerprint in ((saved, spec.cell_fingerprint(saved)), (foreign, "another")):
        doc = {
            "format": PARTIAL_FORMAT,
            "cell": fingerprint,
            "state": {"rows": len(rows)},
            "rows": rows,
        }
        (out / "parts" / partial_file(spec, cell)).write_text(json.dumps(doc))
    st = read_status(out)
    assert st.complete == 2 and st.rows_done == 10 + 2
    assert [(c.key, c.rows, c.expected) for c in st.open_cells] == [
        (saved.key(None), 2, 5),
        (foreign.key(None), 0, 5),
    ]
    # the pace: the saved rows' mean decision time, and the 3 rows left at it
    pace = sum(float(r["decision_time_s"]) for r in rows) / 2
    assert st.open_cells[0].step_s == pytest.approx(pace) and pace > 0
    assert st.open_cells[0].left_s() == pytest.approx(3 * pace)
    assert st.open_cells[1].step_s is None and st.open_cells[1].left_s() is None
    text = status_text(capsys, out)
    assert "2 of 4 cells complete, 12 of 20 rows (60.0 %)" in text
    line = next(x for x in text.splitlines() if x.startswith(saved.key(None)))
    assert "2/5" in line and "ago" in line and " a step, about " in line and " left" in line
    foreign_line = next(x for x in text.splitlines() if x.startswith(foreign.key(None)))
    assert "nothing yet" in foreign_line and "a step" not in foreign_line


def test_the_writer_from_the_lock_file(finished, tmp_path, capsys):
    _, done = finished
    out = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(done), str(out)], check=True)
    lock = out / ".lock"
    host = socket.gethostname()

    def holder(pid: int, on: str = host) -> str:
        info = {"pid": pid, "host": on, "command": "study", "since": "2026-01-01T00:00:00"}
        lock.write_text(json.dumps(info) + "\n")
        return read_status(out).writer

    assert holder(os.getpid()).endswith(", running")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert "has stopped (rerun its command to resume)" in holder(int(gone.stdout))
    assert "another machine" in holder(os.getpid(), "elsewhere")
    lock.write_text("not json")
    assert read_status(out).writer.startswith("unknown")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--status", "{tmp}/none"], "is not a folder"),
        (["--status", "{tmp}"], "is not a study folder (no manifest.json)"),
        (["fig6_users", "--status", "{tmp}"], "give only the study folder"),
        (["--status", "{tmp}", "--report-only"], "give only the study folder"),
    ],
)
def test_bad_status_requests_exit_2(tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert study.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --status: ") and message in err[0], err


@pytest.mark.parametrize(
    ("step_s", "rows", "expected"),
    [
        (40.0, 10, "40 s a step, about 60 min left"),  # 90 steps of 40 s
        (0.25, 96, "0.25 s a step, about 1 s left"),
        (300.0, 0, "5 min a step, about 8.3 h left"),
    ],
)
def test_the_pace_line(step_s, rows, expected):
    st = StudyStatus("st", Path("out"), 1, 0, 100, rows)
    st.open_cells.append(CellProgress("milp|seed=1", rows, 100, saved_at=1000.0, step_s=step_s))
    line = format_status(st, now=1030.0).splitlines()[-1]
    assert line.endswith(f"(30 s ago); {expected}"), line
