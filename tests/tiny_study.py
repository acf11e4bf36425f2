"""The tiny study spec and helpers shared by the study tests (``from tiny_study import ...``)."""

from __future__ import annotations

import csv
from pathlib import Path

from dtasm_opt.core.records import TIMING_COLUMNS

ROOT = Path(__file__).resolve().parents[1]  # the repository
BASELINES = '["womig-stable", "womig-dynamic", "random", "nearest", "danearest"]'
TINY = f"""
[study]
name = "tiny"
methods = {BASELINES}
seeds = [1, 2]
steps = 5
last = 3

[scenario]
users = 20
servers = 3

[sweep]
axis = "xi"
values = [0.8, 1.2]
"""
N_CELLS = 5 * 2 * 2


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def rows_of(path: Path, *, drop_timing: bool = True) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if drop_timing:
        for r in rows:
            for c in TIMING_COLUMNS:
                r.pop(c, None)
    return rows


def quiet(_msg: str) -> None:
    pass
