"""Where a study folder stands, read without taking its lock (``study --status DIR``).

A long study (hours of exact steps) runs in the background; this says, from the folder alone,
how many cells and rows are complete, how far each unfinished cell has got (its saved
progress, ``parts/<cell>.partial.json``, when it was saved, and its pace: the saved rows'
mean decision time and the time left at it), whether a run holds the folder now, and, for
the exact policies, how many of their steps so far are proven in each stage and how many a
wall-clock limit stopped (rows that may not repeat). It only reads: it is safe beside the
run that writes the folder, and a file that the run replaces meanwhile is read as it was or
as it is, never half.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dtasm_opt.core.wording import counted
from dtasm_opt.errors import InputError
from dtasm_opt.studies.cells import PartialFile, clock_note, expected_rows, stopped_by_clock
from dtasm_opt.studies.folder import cell_file, ledger_entries, partial_file, spec_of_folder
from dtasm_opt.studies.spec import Cell, Spec, fills_stage2


@dataclass
class CellProgress:
    """One cell that is not complete: the rows its saved progress holds, and when it was
    saved (None: nothing saved, the cell has not started or runs where nothing is saved)."""

    key: str
    rows: int
    expected: int
    saved_at: float | None = None
    step_s: float | None = None  # the saved rows' mean decision time (None: none recorded)

    def left_s(self) -> float | None:
        """Seconds of steps left at the saved rows' pace (exact steps vary by orders of
        magnitude, so this is a rough guide, not a promise)."""
        return None if self.step_s is None else self.step_s * (self.expected - self.rows)


@dataclass
class MethodProgress:
    """One method label's rows so far (complete cells' and saved ones) against all it will
    have; for an exact policy (``exact``), how many of them are proven in each stage."""

    exact: bool
    rows: int = 0
    expected: int = 0
    load: int = 0
    tie_break: int = 0
    older: int = 0  # complete cells computed at an older revision of the method
    clock: int = 0  # rows with a solve that a wall-clock limit stopped (they may not repeat)


@dataclass
class StudyStatus:
    name: str
    folder: Path
    cells: int
    complete: int
    rows: int  # expected in all
    rows_done: int  # complete cells' rows and the saved rows of the others
    open_cells: list[CellProgress] = field(default_factory=list)
    writer: str = "none (no run holds the folder)"
    methods: dict[str, MethodProgress] = field(default_factory=dict)
    kind: str = "rollout"  # the spec's kind: a solve study's rows are solves, not steps


def read_status(folder: str | Path) -> StudyStatus:
    """The state of the study folder ``folder`` (an :class:`InputError` where it is none)."""
    out = Path(folder)
    if not out.is_dir():
        raise InputError(f"--status: {out} is not a folder")
    spec = spec_of_folder(out, flag="--status")
    done = ledger_entries(out / "cells.jsonl")
    methods = {m.label: MethodProgress(fills_stage2(m)) for m in spec.methods}
    cells = spec.cells()
    st = StudyStatus(spec.name, out, len(cells), 0, 0, 0, methods=methods, kind=spec.kind)
    for cell in cells:
        key, expected = cell.key(spec.axis), expected_rows(spec, cell)
        progress = methods[cell.method]
        st.rows += expected
        progress.expected += expected
        if key in done:
            st.complete += 1
            progress.older += not spec.made_here(cell, done[key])
            st.rows_done += expected
            progress.rows += expected
            if progress.exact:
                _count(progress, _part_rows(out / "parts" / cell_file(spec, cell)))
            continue
        rows, saved_at = _saved(spec, cell, out / "parts" / partial_file(spec, cell))
        st.rows_done += len(rows)
        progress.rows += len(rows)
        st.open_cells.append(CellProgress(key, len(rows), expected, saved_at, _mean_step(rows)))
        if progress.exact:
            _count(progress, rows)
    st.writer = _writer(out / ".lock")
    return st


def _saved(spec: Spec, cell: Cell, path: Path) -> tuple[list[dict], float | None]:
    """A running cell's saved rows and when they were saved, read as the run resumes them
    (:class:`PartialFile`); none where there is no file, or it is another spec's cell's or
    damaged (the run says which when it resumes)."""
    try:
        saved_at = path.stat().st_mtime
        saved = PartialFile(path, spec.cell_fingerprint(cell)).read()
    except (FileNotFoundError, InputError):
        return [], None
    return (saved[0], saved_at) if saved is not None else ([], None)


def _mean_step(rows: list[dict]) -> float | None:
    times = []
    for r in rows:
        try:
            times.append(float(r.get("decision_time_s", "")))
        except (TypeError, ValueError):
            pass  # a row without a recorded time (an empty CSV field)
    return sum(times) / len(times) if times else None


def _part_rows(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:  # the ledger lists it, so it exists unless deleted by hand
        return []


def _count(p: MethodProgress, rows: list[dict]) -> None:
    p.load += sum(r.get("status") == "optimal" for r in rows)
    p.tie_break += sum(r.get("stage2_status") == "optimal" for r in rows)
    p.clock += stopped_by_clock(rows)


def _writer(lock: Path) -> str:
    """Who holds the folder, from its lock file: a run removes the file when it ends, and a
    file left by a killed run names a process that is gone."""
    try:
        doc = json.loads(lock.read_text(encoding="utf-8") or "{}")
        pid, host, since = int(doc["pid"]), str(doc["host"]), str(doc["since"])
    except FileNotFoundError:
        return "none (no run holds the folder)"
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown (its lock file does not say)"
    who = f"pid {pid} on {host} since {since}"
    if host != socket.gethostname():
        return f"{who} (another machine: whether it still runs cannot be told from here)"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"none: {who} has stopped (rerun its command to resume)"
    except PermissionError:
        pass  # it exists, under another user
    return f"{who}, running"


def format_status(st: StudyStatus, now: float | None = None) -> str:
    """The status as lines of text (``now``: the clock, for "saved N min ago")."""
    now = time.time() if now is None else now
    share = 100.0 * st.rows_done / st.rows if st.rows else 100.0
    lines = [
        f"{st.name} in {st.folder}: {st.complete} of {st.cells} cells complete, "
        f"{st.rows_done:,} of {st.rows:,} rows ({share:.1f} %)",
        f"writer: {st.writer}",
    ]
    if st.open_cells:
        width = max(len(c.key) for c in st.open_cells)
        lines.append(f"{'cell':<{width}}  {'rows':>11}  saved")
        for c in st.open_cells:
            rows = f"{c.rows}/{c.expected}"
            if c.saved_at is None:
                saved = "nothing yet"
            else:
                stamp = datetime.fromtimestamp(c.saved_at).strftime("%Y-%m-%d %H:%M:%S")
                saved = f"{stamp} ({_ago(now - c.saved_at)})"
            left = c.left_s()
            if c.step_s is not None and left is not None:
                saved += f"; {_duration(c.step_s)} a step, about {_duration(left)} left"
            lines.append(f"{c.key:<{width}}  {rows:>11}  {saved}")
    for label, p in st.methods.items():
        if p.rows == p.expected and not p.exact and not p.older:
            continue  # complete, and nothing to prove
        line = f"{label}: {p.rows:,} of {p.expected:,} rows"
        if p.exact and p.rows:
            line += f"; load stage proven on {p.load:,}, tie-break on {p.tie_break:,}"
        line += clock_note(p.clock, st.kind)  # a safety net that bound: the machine's load
        if p.older:  # this code's rows may differ (docs/design.md, "Across machines")
            line += f"; {counted(p.older, 'complete cell')} from an older revision of the method"
        lines.append(line)
    return "\n".join(lines)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{seconds:.0f} s ago" if seconds < 90 else f"{_duration(seconds)} ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.2g} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
