"""Run a study's cells on a backend into its folder (:mod:`.folder`: the files and the
crash-safe protocol that lets an interrupted study resume): check everything first, hold the
folder's lock, take ``--reuse`` cells, then commit each finished cell as it comes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dtasm_opt.core.locks import OutputLock
from dtasm_opt.core.wording import counted
from dtasm_opt.errors import InputError
from dtasm_opt.studies.backends import local_cells, ray_cells
from dtasm_opt.studies.cells import check_spec, clock_note, expected_rows, stopped_by_clock
from dtasm_opt.studies.folder import StudyDir, partial_file, spec_of_folder
from dtasm_opt.studies.spec import Spec

BACKENDS = ("local", "ray")


def run_study(
    spec: Spec,
    out: str | Path,
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    log=None,
    on_progress: Callable[[int, int, int, int], None] | None = None,
    reuse: Sequence[str | Path] = (),
) -> dict:
    """Run every pending cell of ``spec`` into ``out``; return counts of what happened.
    The whole spec is checked first, then the folder is locked for the run (the keywords:
    :func:`run_locked`)."""
    check_run(spec, out, backend, workers, reuse)
    with lock_folder(out):
        return run_locked(spec, out, backend=backend, workers=workers, address=address,
                          log=log, on_progress=on_progress, reuse=reuse)  # fmt: skip


def check_run(
    spec: Spec,
    out: str | Path,
    backend: str,
    workers: int,
    reuse: Sequence[str | Path] = (),
) -> None:
    """Everything that can be refused before any file is made."""
    for old in reuse:
        if not Path(old).is_dir():
            raise InputError(f"--reuse: {old} is not a folder")
        if Path(out).exists() and Path(old).resolve() == Path(out).resolve():
            raise InputError("--reuse: names the output folder itself; give the old folder")
        spec_of_folder(Path(old))
    if backend not in BACKENDS:
        raise InputError(f"--backend: {backend!r} is unknown, use one of {BACKENDS}")
    if workers < 1:
        raise InputError(f"--workers: {workers} is invalid, must be >= 1")
    if Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"--out: {out} is not a folder")
    check_spec(spec)


def lock_folder(out: str | Path) -> OutputLock:
    """The study folder (created if needed) with its lock held: one writer per folder."""
    Path(out).mkdir(parents=True, exist_ok=True)
    return OutputLock(out, folder=True)


def run_locked(
    spec: Spec,
    out: str | Path,
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    log=None,
    on_progress: Callable[[int, int, int, int], None] | None = None,
    reuse: Sequence[str | Path] = (),
) -> dict:
    """:func:`run_study` for a caller that already holds the folder's lock.
    ``on_progress(cells done, cells, rows done, rows)`` follows the run (rows of running
    cells included); ``log`` gets one line per finished cell; ``reuse``: study folders whose
    unchanged cells are copied rather than recomputed, the first that has a cell giving it
    (:meth:`StudyDir.adopt`)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    sd = StudyDir(spec, out)
    sd.open(backend, workers)
    for old in reuse:
        whole, prefix, raised = sd.adopt(Path(old))
        log(f"{spec.name}: {counted(whole, 'unchanged cell')} taken from {old}")
        if prefix:
            taken = counted(prefix, "cell")
            log(f"{spec.name}: {taken} taken from the first steps of {old}'s cells")
        if raised:
            log(
                f"{spec.name}: {raised} of them ran under a smaller time limit, which stopped "
                "none of their steps"
            )
    pending = sd.pending()
    total, skipped = len(sd.cells), len(sd.cells) - len(pending)
    if skipped:
        log(f"{spec.name}: {skipped} of {counted(total, 'cell')} already complete; resuming")
    if older := sd.older():
        log(
            f"{spec.name}: {counted(len(older), 'complete cell')} ({', '.join(older[:3])}"
            f"{', ...' if len(older) > 3 else ''}) were computed by an older revision of "
            "their method and kept; this code's rows may differ (run into a new --out)"
        )
    failed: dict[str, str] = {}
    start = time.monotonic()
    expected = {c.key(spec.axis): expected_rows(spec, c) for c in pending}
    running: dict[str, int] = {}
    rows_total, rows_done = sum(expected.values()), 0

    finished: set[str] = set()

    def on_rows(key: str, rows: int) -> None:
        # A pool worker's last report can arrive after its cell's result (the queue has a
        # feeder thread of its own): a finished cell is counted in rows_done, not again here.
        if key not in finished:
            running[key] = rows
        if on_progress is not None:
            on_progress(len(sd.done), total, rows_done + sum(running.values()), rows_total)

    runner = (
        ray_cells(spec, pending, workers, address)
        if backend == "ray"
        else local_cells(
            spec, pending, workers, on_rows, lambda c: sd.parts / partial_file(spec, c)
        )
    )
    for cell, ok, result, wall_s in runner:
        key = cell.key(spec.axis)
        finished.add(key)
        running.pop(key, None)
        rows_done += expected[key]
        if ok:
            sd.commit(cell, result, wall_s)
            note = clock_note(stopped_by_clock(result), spec.kind)
            log(f"[{len(sd.done)}/{total}] {key}: {len(result)} rows in {wall_s:.1f} s{note}")
        else:
            failed[key] = str(result)
            log(f"[failed] {key}: {result}")
        on_rows(key, 0)
    if not sd.pending():
        sd.consolidate()
    return {
        "out": str(sd.out),
        "cells": total,
        "skipped": skipped,
        "ran": len(pending) - len(failed),
        "failed": failed,
        "wall_s": time.monotonic() - start,
    }
