"""Step records: the one row type that rollouts, training and studies write (docs/design.md §5).

:class:`StepRecord` declares the columns once. A rollout writes :data:`STEP_COLUMNS`; training
adds :data:`TRAINING_COLUMNS`; a study puts ``study``, the sweep axis and ``seed`` in front and
adds the optional groups it uses (:func:`step_columns`). A solve study writes one
:class:`SolveRecord` per instance instead.

CSV files are tidy, written and flushed row by row. Floats are written with ``repr`` (the
shortest round-trip form), so a rerun with the same seed writes byte-identical values; None is
an empty cell. Rows never contain newlines, so a record file can be cut back to its first n
rows by counting lines, which is how every resume drops rows written after its checkpoint and
a torn last line (:func:`resume_rows`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO

import numpy as np

from dtasm_opt.core.simulator import StepOutcome
from dtasm_opt.core.solution import relative_gap
from dtasm_opt.errors import InputError


@dataclass(frozen=True)
class StepRecord:
    """One method's decision at one step, as the simulator judged it."""

    method: str  # the method's label
    step: int  # rollout step, from 0 (past the stream's end the stream restarts)
    stream_step: int  # the stream's step: step % T
    cloud_load_bytes: float  # the step's cloud load (the reward's negative, eq. (19))
    mean_downtime_s: float  # over this step's migrated users (0 when none)
    total_downtime_s: float  # summed over them: pooled means over a run need it
    migrated: int
    migration_failed: int
    rejected: int
    users_on_edge: int
    status: str  # the method's status: optimal, feasible, time_limit or heuristic
    bound_bytes: float | None  # a proven lower bound on the step's cloud load, if any
    gap: float | None  # relative gap of cloud_load_bytes to bound_bytes (§3)
    decision_time_s: float  # wall time of the decision (a timing column)

    @classmethod
    def judged(
        cls,
        method: str,
        step: int,
        stream_step: int,
        outcome: StepOutcome,
        *,
        status: str,
        bound_bytes: float | None,
        decision_time_s: float,
    ) -> StepRecord:
        """The record of a decision the simulator implemented as ``outcome``."""
        return cls(
            method=method,
            step=step,
            stream_step=stream_step,
            cloud_load_bytes=outcome.cloud_load_bytes,
            mean_downtime_s=outcome.mean_downtime_s,
            total_downtime_s=outcome.total_downtime_s,
            migrated=outcome.migrated,
            migration_failed=outcome.migration_failed,
            rejected=outcome.rejected,
            users_on_edge=outcome.users_on_edge,
            status=status,
            bound_bytes=bound_bytes,
            gap=relative_gap(outcome.cloud_load_bytes, bound_bytes),
            decision_time_s=decision_time_s,
        )

    def row(self, **extra: object) -> dict[str, object]:
        """The record as a CSV row (a dict by column), with ``extra`` columns added."""
        return {**asdict(self), **extra}


@dataclass(frozen=True)
class SolveRecord:
    """One method on one instance (a solve study's row)."""

    method: str
    step: int
    users: int
    servers: int
    status: str
    cloud_load_bytes: float
    bound_bytes: float | None
    gap: float | None
    migrated: int
    rejected: int
    users_on_edge: int
    build_s: float | None  # exact solvers: model build time (a timing column)
    solve_s: float | None  # exact solvers: stage-1 solve time (a timing column)
    stage2_s: float | None  # exact solvers: tie-break stage time (a timing column)
    decision_time_s: float

    def row(self, **extra: object) -> dict[str, object]:
        return {**asdict(self), **extra}


STEP_COLUMNS = tuple(f.name for f in fields(StepRecord))
SOLVE_COLUMNS = tuple(f.name for f in fields(SolveRecord))
# Optional column groups.
TRAINING_COLUMNS = ("phase", "critic_loss", "actor_loss")  # a TD3 training step
OPTIMUM_COLUMNS = (  # the step's exact optimum from the state the method was in
    "step_optimum_bytes",
    "step_optimum_bound_bytes",
    "step_optimum_status",
)
WINDOW_COLUMNS = ("window_steps",)  # a hindsight-bound row covers a window of steps
# An exact method's tie-break stage (fewest migrations, or least downtime, among plans serving
# stage 1's users): its status, its value and a proven lower bound on that value (the best of
# HiGHS's and, for the engine, the Lagrangian bound). Empty on other methods' rows.
STAGE2_COLUMNS = ("stage2_status", "stage2_objective", "stage2_bound")
# Wall-clock columns: the only ones that differ between two runs with the same seed.
TIMING_COLUMNS = ("decision_time_s", "build_s", "solve_s", "stage2_s")


def step_columns(
    *, training: bool = False, optimum: bool = False, windows: bool = False, stage2: bool = False
) -> tuple[str, ...]:
    """The step-record columns with the optional groups asked for, in this fixed order (the
    shipped studies' files have it)."""
    return (
        STEP_COLUMNS
        + (OPTIMUM_COLUMNS if optimum else ())
        + (STAGE2_COLUMNS if stage2 else ())
        + (TRAINING_COLUMNS if training else ())
        + (WINDOW_COLUMNS if windows else ())
    )


def stage2_fields(info: Mapping[str, object]) -> dict[str, object]:
    """The :data:`STAGE2_COLUMNS` of a decision's ``info`` (None where it has no tie-break)."""
    return {c: info.get(c) for c in STAGE2_COLUMNS}


def add_empty_columns(data: bytes, columns: Sequence[str], added: Sequence[str]) -> bytes | None:
    """A record file's bytes rewritten with ``columns``, where its own header is ``columns``
    without ``added`` (whose cells are then empty); None for any other header."""
    text = data.decode("utf-8")
    head, _, body = text.partition("\n")
    old = head.split(",")
    if old != [c for c in columns if c not in added] or len(old) == len(columns):
        return None
    rows = [dict(zip(old, r, strict=True)) for r in csv.reader(io.StringIO(body))]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows([r.get(c, "") for c in columns] for r in rows)
    return buf.getvalue().encode("utf-8")


def cell(value: object) -> str:
    """One CSV cell: repr for floats (numpy scalars as Python numbers), "" for None."""
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"a record cell may not contain a newline: {text!r}")
    return text


def write_rows(
    fh: IO[str], columns: Sequence[str], rows: Iterable[Mapping[str, object]], *, header: bool
) -> None:
    """Rows with exactly ``columns`` (a key outside them is a programming error)."""
    w = csv.writer(fh, lineterminator="\n")
    if header:
        w.writerow(columns)
    known = set(columns)
    for row in rows:
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"row has columns {sorted(unknown)} outside {list(columns)}")
        w.writerow([cell(row.get(c)) for c in columns])


class RowWriter:
    """Append rows with fixed ``columns`` to a CSV file, flushing after every row."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], *, append: bool):
        self.path = Path(path)
        self.columns = tuple(columns)
        self._fh = open(self.path, "a" if append else "x", encoding="utf-8", newline="")
        if not append or self.path.stat().st_size == 0:
            write_rows(self._fh, self.columns, [], header=True)
            self._fh.flush()

    def write(self, row: Mapping[str, object]) -> None:
        write_rows(self._fh, self.columns, [row], header=False)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def count_rows(path: str | os.PathLike) -> int:
    """Complete data rows (newline-terminated lines after the header) in a record file."""
    with open(path, "rb") as fh:
        lines = fh.read().count(b"\n")
    return max(0, lines - 1)


def truncate_rows(path: str | os.PathLike, rows: int) -> None:
    """Cut the file back to its header and first ``rows`` data rows (drops a torn last line)."""
    with open(path, "r+b") as fh:
        data = fh.read()
        end, seen = 0, -1  # the header line is line -1
        while seen < rows:
            nl = data.find(b"\n", end)
            if nl < 0:
                raise InputError(f"{path}: has fewer than {rows} complete rows")
            end, seen = nl + 1, seen + 1
        fh.truncate(end)


def check_header(path: str | os.PathLike, columns: Sequence[str]) -> None:
    """Refuse a record file with other columns (a torn header line is a prefix of ours)."""
    want = ",".join(columns)
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        line = fh.readline()
    ok = line == want + "\n" if line.endswith("\n") else want.startswith(line)
    if not ok:
        raise InputError(f"{path}: unexpected columns {line.strip()!r}, expected {want}")


def resume_rows(path: str | os.PathLike, columns: Sequence[str], rows: int) -> None:
    """Prepare a record file to continue after its first ``rows`` rows, which a checkpoint
    covers: later rows (written after the checkpoint) and a torn last line are dropped."""
    check_header(path, columns)
    have = count_rows(path)
    if have < rows:
        raise InputError(f"{path}: holds {have} rows, its checkpoint {rows}; cannot resume")
    if rows == 0:
        Path(path).write_bytes(b"")  # the header is written again
    else:
        truncate_rows(path, rows)


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """All complete rows of a record file as dicts of strings (a torn last line is skipped)."""
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    complete = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(complete.splitlines()))


def floats(rows: Iterable[Mapping[str, str]], column: str) -> list[float]:
    return [float(r[column]) for r in rows if r.get(column) not in (None, "")]
