"""Tidy CSV step records (DESIGN section 5): written and flushed row by row, read back as dicts.

Floats are written with ``repr`` (shortest round-trip form), so a rerun with the same seed
writes byte-identical values; ``None`` is an empty cell. Rows never contain newlines, so a
record file can be cut back to its first n rows by counting lines (what resuming needs).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from dtasm_opt.errors import InputError


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"a record cell may not contain a newline: {text!r}")
    return text


class RowWriter:
    """Append rows with fixed ``columns`` to a CSV file, flushing after every row."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], *, append: bool):
        self.path = Path(path)
        self.columns = tuple(columns)
        self._fh = open(self.path, "a" if append else "x", encoding="utf-8", newline="")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        if not append or self.path.stat().st_size == 0:
            self._csv.writerow(self.columns)
            self._fh.flush()

    def write(self, row: dict) -> None:
        self._csv.writerow([cell(row.get(c)) for c in self.columns])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc) -> None:
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


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """All complete rows of a record file as dicts of strings (a torn last line is skipped)."""
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    complete = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(complete.splitlines()))


def floats(rows: Iterable[dict], column: str) -> list[float]:
    return [float(r[column]) for r in rows if r.get(column) not in (None, "")]
