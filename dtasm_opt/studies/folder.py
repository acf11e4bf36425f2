"""A study's output folder (``StudyDir``), written so that an interrupted study resumes::

    manifest.json   config, spec text and fingerprint, git commit, package versions, runs
    parts/<cell>.csv one file per completed cell (header + its rows)
    parts/<cell>.partial.json  a running rollout cell's rows so far and its state (local
                    backend; cells.py), removed once the cell is committed
    results.csv     every completed cell's rows (tidy, long format)
    cells.jsonl     the ledger: one JSON line per cell appended to results.csv

Crash safety (a kill -9 at any instant loses no completed cell and duplicates no row). Only
the run (:mod:`.runner`) writes; workers just return rows. Committing a cell is three steps:

1. its part file is written under a temporary name, fsynced and renamed into place: a part
   file exists iff it is complete (a rename is atomic);
2. the part's rows (without header) are appended to results.csv and fsynced;
3. a ledger line ``{"key", "part", "rows", "end"}`` is appended and fsynced, where ``end`` is
   results.csv's size after step 2.

At every start :meth:`StudyDir.reconcile` first drops a torn last ledger line, then cuts
results.csv back to the last ledger line's ``end`` (rows appended by an unfinished step 2 or
by a step 2 whose step 3 never happened are removed), then appends, in the study's fixed
cell order, every complete part file that the ledger does not list (a kill after step 1),
each with its ledger line. Hence results.csv always equals the header plus the ledger's parts,
each exactly once. A completed cell is never recomputed: its part file or ledger line exists.
When every cell is complete, results.csv is rewritten once in the fixed cell order (a
temporary file and a rename; its size, which the last ledger line records, does not change),
so the final file does not depend on the backend or on the order cells finished in.

``--reuse`` (:meth:`StudyDir.adopt`) copies another folder's complete cells into this one
through the same protocol.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import platform
import re
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dtasm_opt.core import files, records
from dtasm_opt.errors import InputError
from dtasm_opt.studies.cells import columns, expected_rows
from dtasm_opt.studies.provenance import git_commit, machine, package_versions
from dtasm_opt.studies.spec import Cell, Spec, format_value, parse, shrink

# Column groups that a policy's rows leave empty: another study's rows of the same rollout may
# lack them (a study without a trainer or a bound has no such columns).
OPTIONAL_EMPTY = frozenset(records.TRAINING_COLUMNS + records.WINDOW_COLUMNS)


def cell_file(spec: Spec, cell: Cell) -> str:
    """A readable, collision-free file name for ``cell``'s part file."""
    key = cell.key(spec.axis)
    slug = re.sub(r"[^A-Za-z0-9.=-]+", "_", key)[:80]
    return f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:8]}.csv"


def partial_file(spec: Spec, cell: Cell) -> str:
    """Where a running cell keeps its progress (:mod:`.cells`), beside its part file."""
    return cell_file(spec, cell).removesuffix(".csv") + ".partial.json"


def _csv_text(cols: Sequence[str], rows: Sequence[dict], header: bool) -> str:
    buf = io.StringIO()
    records.write_rows(buf, cols, rows, header=header)
    return buf.getvalue()


def _append_synced(path: Path, data: bytes) -> int:
    """Append ``data``, fsync, and return the file's new size."""
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name, fsync, then rename onto ``path`` (atomic)."""
    files.write_bytes_atomic(path, data, sync=True)


class StudyDir:
    """The output folder of one study (see the module docstring for the protocol)."""

    def __init__(self, spec: Spec, out: str | Path):
        self.spec = spec
        self.out = Path(out)
        self.parts = self.out / "parts"
        self.results = self.out / "results.csv"
        self.ledger = self.out / "cells.jsonl"
        self.manifest = self.out / "manifest.json"
        self.columns = columns(spec)
        self.header = _csv_text(self.columns, [], header=True).encode()
        self.cells = spec.cells()
        self.done: dict[str, dict] = {}  # cell key -> ledger entry

    def open(self, backend: str, workers: int) -> None:
        """Create or check the folder and the manifest, then reconcile (resume)."""
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"--out: {self.out} is not a folder")
        self.parts.mkdir(parents=True, exist_ok=True)
        run = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "backend": backend,
            "workers": workers,
            "git_commit": git_commit(),
            "machine": machine(),
        }
        if self.manifest.exists():
            doc = files.read_json(self.manifest)
            if not isinstance(doc, dict) or doc.get("fingerprint") != self.spec.fingerprint():
                raise InputError(
                    f"{self.out}: holds a study of another spec (or another --quick setting); "
                    "use another --out or delete the folder"
                )
            doc["runs"] = [*doc.get("runs", []), run]
        else:
            doc = {
                "format": "dtasm-study/1",
                "study": self.spec.name,
                "fingerprint": self.spec.fingerprint(),
                "config": self.spec.config(),
                "spec": self.spec.text,
                "columns": list(self.columns),
                "cells": len(self.cells),
                "python": platform.python_version(),
                "packages": package_versions(),
                **run,
                "runs": [run],
            }
        files.write_json(self.manifest, doc)
        self.reconcile()

    def reconcile(self) -> None:
        """Bring ledger, results.csv and part files back to a consistent state."""
        entries, good = [], 0
        if self.ledger.exists():
            data = self.ledger.read_bytes()
            for line in data.splitlines(keepends=True):
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("torn")
                    entries.append(json.loads(line))
                except ValueError:
                    break  # a torn (or damaged) line and anything after it are dropped
                good += len(line)
            if good < len(data):
                with open(self.ledger, "r+b") as fh:
                    fh.truncate(good)
        if not self.results.exists() or self.results.stat().st_size < len(self.header):
            if entries:
                raise InputError(f"{self.results}: missing, but {self.ledger.name} lists cells")
            _write_synced(self.results, self.header)
        records.check_header(self.results, self.columns)
        end = entries[-1]["end"] if entries else len(self.header)
        if self.results.stat().st_size < end:
            raise InputError(
                f"{self.results}: shorter than {self.ledger.name} records; "
                "it was edited: delete the folder to start again"
            )
        with open(self.results, "r+b") as fh:
            fh.truncate(end)  # rows appended after the last ledger line are redone below
        self.done = {e["key"]: e for e in entries}
        for tmp in self.parts.glob(".*.tmp"):
            tmp.unlink()  # a part file that was being written when the run was killed
        for cell in self.cells:
            key = cell.key(self.spec.axis)
            path = self.parts / cell_file(self.spec, cell)
            if key not in self.done and path.exists():
                self._append(cell, path)
            if key in self.done:  # killed between the commit and the partial file's removal
                (self.parts / partial_file(self.spec, cell)).unlink(missing_ok=True)

    def adopt(self, old: Path) -> tuple[int, int, int]:
        """Copy into this folder every pending cell that the study folder ``old`` completed
        with the same cell fingerprint (:meth:`Spec.cell_fingerprint`): what an edit of one
        method's table leaves unchanged is not recomputed. A cell that finds none there takes
        the first steps of a completed cell of ``old`` with the same run identity
        (:meth:`Spec.run_identity`: an exact policy's rollout, in this study or another) that
        ran at least as many steps over the same stream, or of one that differs only in
        smaller wall-clock limits (``spec.SAFETY_NETS``) where none of the steps taken came
        near them: a limit that stopped nothing changed nothing. Returns (cells copied whole,
        cells taken as first steps, how many of those under smaller limits)."""
        old_spec = spec_of_folder(old)
        old_cells = {c.key(old_spec.axis): c for c in old_spec.cells()}
        # A cell computed at another revision of its method (an entry without one: 0) is
        # not this code's: the fingerprints cover the spec, not the code.
        old_done = {
            k: e
            for k, e in ledger_entries(old / "cells.jsonl").items()
            if k in old_cells and old_spec.made_here(old_cells[k], e)
        }
        done = [c for c in old_spec.cells() if c.key(old_spec.axis) in old_done]
        longer = {ident: c for c in done if (ident := old_spec.run_identity(c))}
        loose = {ident: c for c in done if (ident := old_spec.run_identity(c, safety_nets=False))}
        whole = prefix = raised = 0
        for cell in self.pending():
            key = cell.key(self.spec.axis)
            twin = old_cells.get(key)
            if twin is not None and key in old_done:
                if old_spec.cell_fingerprint(twin) == self.spec.cell_fingerprint(cell):
                    data = self._whole(old / "parts" / cell_file(old_spec, twin))
                    if data is not None:
                        path = self.parts / cell_file(self.spec, cell)
                        _write_synced(path, data)
                        # The row count is checked; the ledger line keeps the time of the run
                        # that computed the cell and names the folder it came from.
                        wall_s = old_done[key].get("wall_s")
                        self._append(cell, path, wall_s, {"adopted_from": str(old)})
                        whole += 1
                        continue
            ident = self.spec.run_identity(cell)
            if ident is None:
                continue
            source, below, nets = longer.get(ident), math.inf, None
            if source is None:
                source = loose.get(self.spec.run_identity(cell, safety_nets=False) or "")
                if source is None:
                    continue
                nets = old_spec.safety_nets_s(source)
                raised_to = _raised_nets(self.spec.safety_nets_s(cell), nets)
                if raised_to is None:
                    continue
                below = raised_to
            part = old / "parts" / cell_file(old_spec, source)
            data = self._first_steps(old_spec, part, cell, below)
            if data is None:
                continue
            path = self.parts / cell_file(self.spec, cell)
            _write_synced(path, data)
            # No wall time: the run that computed these steps also ran others.
            origin: dict = {"adopted_from": str(old), "adopted_cell": source.key(old_spec.axis)}
            if nets is not None:  # the rows ran under these smaller limits, stopped by none
                origin["adopted_safety_nets_s"] = list(nets)
                raised += 1
            self._append(cell, path, None, origin)
            prefix += 1
        return whole, prefix, raised

    def _whole(self, part: Path) -> bytes | None:
        """A part file of the same cell fingerprint, as this study writes it (None: its
        columns differ in another way, and the cell is recomputed)."""
        data = part.read_bytes()
        if data.startswith(self.header):
            return data
        # The one header change a cell survives: stage2_columns switched on, for a method
        # whose rows leave them empty (its fingerprint is unchanged).
        return records.add_empty_columns(data, self.columns, records.STAGE2_COLUMNS)

    def _first_steps(
        self, old_spec: Spec, part: Path, cell: Cell, below: float = math.inf
    ) -> bytes | None:
        """``cell``'s rows made from the first steps of another study's cell of the same run
        identity (its part file ``part``); None where they cannot be: the other cell is
        shorter, its stream differs within these steps, one of these steps took ``below``
        seconds or more (the other cell's smallest wall-clock limit, which may have stopped
        it), or its rows fill a column this study does not have."""
        steps = expected_rows(self.spec, cell)
        ours, theirs = self.spec.stream_steps_of(), old_spec.stream_steps_of()
        if ours != theirs and steps > min(ours, theirs):
            return None  # the two streams start again at different steps
        with open(part, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        if len(rows) < steps or [r.get("step") for r in rows[:steps]] != [
            str(t) for t in range(steps)
        ]:
            return None
        if below < math.inf and not all(_took_less(r, below) for r in rows[:steps]):
            return None  # a step the other cell's smaller limit may have stopped
        head = {"study": self.spec.name, "seed": str(cell.seed)}
        if self.spec.axis:
            head[self.spec.axis] = format_value(cell.value)
        fill = set(self.columns) - set(head)
        dropped = set(rows[0]) - fill - {"study", "seed", old_spec.axis}
        if any(r[c] for r in rows[:steps] for c in dropped):
            return None  # a value this study has no column for
        if any(c not in rows[0] and c not in OPTIONAL_EMPTY for c in fill):
            return None  # a column this study's rows of the method would fill
        out = [{**{c: r.get(c) or None for c in fill}, **head} for r in rows[:steps]]
        return _csv_text(self.columns, out, header=True).encode()

    def pending(self) -> list[Cell]:
        return [c for c in self.cells if c.key(self.spec.axis) not in self.done]

    def older(self) -> list[str]:
        """The complete cells computed at another revision of their method than this code's
        (``Spec.made_here``): a resumed folder keeps them, so the run says so."""
        return [
            key
            for c in self.cells
            if (key := c.key(self.spec.axis)) in self.done
            and not self.spec.made_here(c, self.done[key])
        ]

    def commit(self, cell: Cell, rows: list[dict], wall_s: float) -> None:
        """Steps 1-3 of the protocol for one completed cell."""
        want = expected_rows(self.spec, cell)
        if len(rows) != want:
            raise RuntimeError(f"cell {cell.key(self.spec.axis)}: {len(rows)} rows, want {want}")
        path = self.parts / cell_file(self.spec, cell)
        _write_synced(path, _csv_text(self.columns, rows, header=True).encode())
        self._append(cell, path, wall_s)
        (self.parts / partial_file(self.spec, cell)).unlink(missing_ok=True)

    def _append(
        self, cell: Cell, path: Path, wall_s: float | None = None, extra: dict | None = None
    ) -> None:
        data = path.read_bytes()
        if not data.startswith(self.header):
            raise InputError(f"{path}: unexpected columns; delete it to recompute the cell")
        body = data[len(self.header) :]
        rows = body.count(b"\n")
        if rows != expected_rows(self.spec, cell):
            raise InputError(
                f"{path}: {rows} rows, expected {expected_rows(self.spec, cell)}; "
                "delete it to recompute the cell"
            )
        end = _append_synced(self.results, body)
        key = cell.key(self.spec.axis)
        entry = {
            "key": key,
            "part": path.name,
            "rows": rows,
            "end": end,
            "wall_s": wall_s,
            **({"revision": r} if (r := self.spec.revision(cell)) else {}),
            **(extra or {}),
        }
        _append_synced(self.ledger, (json.dumps(entry) + "\n").encode())
        self.done[key] = entry

    def consolidate(self) -> None:
        """All cells done: rewrite results.csv in the fixed cell order (same bytes, reordered)."""
        parts = [self.parts / self.done[c.key(self.spec.axis)]["part"] for c in self.cells]
        data = self.header + b"".join(p.read_bytes()[len(self.header) :] for p in parts)
        if data != self.results.read_bytes():
            if len(data) != self.results.stat().st_size:
                raise RuntimeError(f"{self.results}: does not match its part files")
            _write_synced(self.results, data)


def spec_of_folder(folder: Path, flag: str = "--reuse") -> Spec:
    """The spec a study folder was run with, from its manifest (errors name ``flag``)."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise InputError(f"{flag}: {folder} is not a study folder (no manifest.json)")
    doc: Any = files.read_json(manifest)
    try:
        text, quick = doc["spec"], bool(doc["config"]["quick"])
        spec = parse(tomllib.loads(text), text)
    except (KeyError, TypeError, tomllib.TOMLDecodeError, InputError) as exc:
        raise InputError(f"{flag}: {manifest}: its spec cannot be read ({exc})") from None
    return shrink(spec) if quick else spec


def ledger_entries(ledger: Path) -> dict[str, dict]:
    """The cells a ledger lists as complete, by key (a torn last line is not one)."""
    entries: dict[str, dict] = {}
    if ledger.exists():
        for line in ledger.read_bytes().splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                entry = json.loads(line)
                entries[entry["key"]] = entry
            except (ValueError, KeyError, TypeError):
                break
    return entries


def _raised_nets(
    new: tuple[float | None, float | None], old: tuple[float | None, float | None]
) -> float | None:
    """Where no wall-clock limit of ``new`` is smaller than ``old``'s (equal, or both set and
    ``new``'s larger): the least of ``old``'s, below which a step's time shows that none of
    them stopped it. None where one shrinks, or is set on one side only (an unset limit is
    the method's own default, not a number here)."""
    for n, o in zip(new, old, strict=True):
        if n != o and (n is None or o is None or n < o):
            return None
    return min((o for o in old if o is not None), default=math.inf)


def _took_less(row: dict, seconds: float) -> bool:
    """Whether ``row``'s step was decided in less than ``seconds`` (False where its time is
    missing or unreadable)."""
    try:
        return float(row.get("decision_time_s") or "nan") < seconds
    except ValueError:
        return False
