"""summary.md of a study, read only from its results.csv (STYLE: plots read only the CSVs).

Statistics: each cell (method, seed, sweep value) is reduced to its means over its last
``last`` steps (mean downtime pooled: total downtime over migrated users, docs/design.md §3);
the table gives the mean of those per-seed values and a 95 % confidence interval across seeds
(Student t, n - 1 degrees of freedom, :mod:`.stats`; none with one seed). Loads are MB of
2^20 bytes.

Plots: :mod:`dtasm_opt.studies.plots`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from dtasm_opt.core import files, records
from dtasm_opt.core.units import BYTES_PER_MB
from dtasm_opt.solvers import registry
from dtasm_opt.studies.cells import GREEDY_SUFFIX, role
from dtasm_opt.studies.spec import Spec
from dtasm_opt.studies.stats import mean_ci

# The label the "- milp MB" columns compare against: the registry's reference method.
REFERENCE = registry.REFERENCE
MOVING_AVERAGE = 20  # the paper's Fig. 4: moving average over 20 episodes
PANELS = (  # (metric key, axis label): the paper's panels (a)-(d)
    ("cloud_mb", "load forwarded to the cloud (MB)"),
    ("downtime_ms", "mean service downtime (ms)"),
    ("migrated", "migrated users (per step)"),
    ("migration_failed", "migration-failed users (per step)"),
)
METRICS = (
    "cloud_mb",
    "downtime_ms",
    "migrated",
    "migration_failed",
    "rejected",
    "users_on_edge",
    "decision_ms",
)


def load_cells(path: str | Path, axis: str | None) -> dict[tuple, dict[str, Any]]:
    """results.csv grouped by (sweep value, method, seed), rows sorted by step; numeric
    columns as float arrays, the rest as lists of strings."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records.read_rows(path):
        groups[(r[axis] if axis else "", r["method"], int(r["seed"]))].append(r)
    out = {}
    for key, rows in groups.items():
        rows.sort(key=lambda r: int(r["step"]))
        cols: dict[str, np.ndarray | list[str]] = {}
        for c in rows[0]:
            vals = [r[c] for r in rows]
            try:
                cols[c] = np.array([float(v) if v != "" else np.nan for v in vals])
            except ValueError:
                cols[c] = vals
        out[key] = cols
    return out


def cell_stats(cols: dict[str, np.ndarray], last: int) -> dict[str, float]:
    """One cell's means over its last ``last`` steps."""
    tail = {k: v[-last:] for k, v in cols.items() if isinstance(v, np.ndarray)}
    migrated = float(np.sum(tail["migrated"]))
    stats = {
        "steps": float(len(tail["step"])),
        "cloud_mb": float(np.mean(tail["cloud_load_bytes"])) / BYTES_PER_MB,
        # Undefined (NaN) without a migration: a seed that moved nobody says nothing about
        # downtime, and a 0 there would drag the mean and blow up the interval.
        "downtime_ms": 1e3 * float(np.nansum(tail["total_downtime_s"])) / migrated
        if migrated
        else math.nan,
        "migrated": float(np.mean(tail["migrated"])),
        "migration_failed": float(np.mean(tail["migration_failed"])),
        "rejected": float(np.mean(tail["rejected"])),
        "users_on_edge": float(np.mean(tail["users_on_edge"])),
        "decision_ms": 1e3 * float(np.mean(tail["decision_time_s"])),
    }
    if "step_optimum_bytes" in tail and not np.all(np.isnan(tail["step_optimum_bytes"])):
        stats["optimum_mb"] = float(np.nanmean(tail["step_optimum_bytes"])) / BYTES_PER_MB
    return stats


def sort_values(values) -> list[str]:
    try:
        return sorted(values, key=float)
    except ValueError:
        return list(values)


def summarize(spec: Spec, path: str | Path) -> tuple[list[dict], dict]:
    """Per (sweep value, method): metric -> (mean, CI) across seeds; also the cells."""
    cells = load_cells(path, spec.axis)
    per: dict[tuple, dict] = defaultdict(dict)  # (value, method) -> seed -> stats
    for (value, method, seed), cols in cells.items():
        if not is_bound(spec, method):
            per[(value, method)][seed] = cell_stats(cols, spec.last)
    methods = list(dict.fromkeys(m for (_, m) in _ordered(spec, per)))
    table = []
    for value, method in _ordered(spec, per):
        seeds = per[(value, method)]
        row = {
            "value": value,
            "method": method,
            "seeds": len(seeds),
            "steps": min(s["steps"] for s in seeds.values()),
        }
        row["per_seed"] = {}
        for k in METRICS + ("optimum_mb",):
            if all(k in s for s in seeds.values()):
                defined = [s[k] for s in seeds.values() if not math.isnan(s[k])]
                if defined:  # across the seeds where the metric is defined (downtime)
                    row[k] = mean_ci(defined)
                    row["per_seed"][k] = defined
        ref = per.get((value, REFERENCE))
        if ref and method != REFERENCE:
            paired = [seeds[s]["cloud_mb"] - ref[s]["cloud_mb"] for s in seeds if s in ref]
            if paired:
                row["vs_reference_mb"] = mean_ci(paired)
                base = sum(ref[s]["cloud_mb"] for s in seeds if s in ref)
                mine = sum(seeds[s]["cloud_mb"] for s in seeds if s in ref)
                row["vs_reference_ratio"] = mine / base if base > 0 else None
        if "optimum_mb" in row:
            row["vs_opt_mb"] = mean_ci([s["cloud_mb"] - s["optimum_mb"] for s in seeds.values()])
            opt = sum(s["optimum_mb"] for s in seeds.values())
            row["vs_opt_ratio"] = sum(s["cloud_mb"] for s in seeds.values()) / opt if opt else None
        table.append(row)
    return table, {"cells": cells, "methods": methods}


def bound_table(spec: Spec, cells: dict) -> list[dict]:
    """Each method against the hindsight bound over the bound's steps [0, n): mean cloud load
    per step, the bound per step, their difference (95 % CI over seeds) and ratio, and the
    least slack over seeds (negative would mean a broken bound)."""
    labels = {m.label for m in spec.methods if role(m) == registry.BOUND}
    out = []
    for label in labels:
        per: dict[tuple, dict] = defaultdict(dict)  # (value, method) -> seed -> (MB, bound MB, n)
        for (value, method, seed), cols in cells.items():
            if method != label:
                continue
            n = int(np.sum(cols["window_steps"]))
            bound = float(np.sum(cols["cloud_load_bytes"])) / n / BYTES_PER_MB
            for (v2, other, s2), c2 in cells.items():
                if (v2, s2) != (value, seed) or other in labels or len(c2["step"]) < n:
                    continue
                mine = float(np.sum(c2["cloud_load_bytes"][:n])) / n / BYTES_PER_MB
                per[(value, other)][seed] = (mine, bound, n)
        for value, method in _ordered(spec, per):
            pairs = list(per[(value, method)].values())
            mine = sum(p[0] for p in pairs)
            bound = sum(p[1] for p in pairs)
            out.append(
                {
                    "value": value,
                    "method": method,
                    "bound": label,
                    "seeds": len(pairs),
                    "steps": min(p[2] for p in pairs),
                    "cloud_mb": mean_ci([p[0] for p in pairs]),
                    "cloud_mb_per_seed": [p[0] for p in pairs],
                    "bound_mb": mean_ci([p[1] for p in pairs]),
                    "vs_bound_mb": mean_ci([p[0] - p[1] for p in pairs]),
                    "vs_bound_ratio": mine / bound if bound > 0 else None,
                    "min_slack_mb": min(p[0] - p[1] for p in pairs),
                }
            )
    return out


def _ordered(spec: Spec, per) -> list[tuple[str, str]]:
    order = {m.label: i for i, m in enumerate(spec.methods)}
    rank = {v: i for i, v in enumerate(sort_values({v for v, _ in per}))}
    return sorted(
        per, key=lambda k: (rank[k[0]], order.get(k[1].removesuffix(GREEDY_SUFFIX), 99), k[1])
    )


def fmt(x) -> str:
    """A summary table cell: a number, or (mean, 95 % half-width) as "mean ± ci"."""
    if x is None:
        return "-"
    if isinstance(x, tuple):
        mean, ci = x
        return f"{mean:.3g}" if ci is None else f"{mean:.3g} ± {ci:.2g}"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def write_summary(spec: Spec, path: str | Path, out: str | Path, run: dict | None = None) -> str:
    """summary.md beside the CSV; returns its text."""
    lines = [f"# Study `{spec.name}`", ""]
    if spec.description:
        lines += [spec.description, ""]
    if spec.quick:
        lines += ["**--quick run: a smoke test with shrunk steps and seeds, not results.**", ""]
    if run and run.get("failed"):
        lines += [f"**{len(run['failed'])} cells failed:**", ""]
        lines += [f"- `{k}`: {v}" for k, v in run["failed"].items()] + [""]
    if spec.kind == "solve":
        lines += _solve_table(spec, path)
    else:
        table, _ = summarize(spec, path)
        lines += [
            f"Means over each cell's last {spec.last} steps; ± is the 95 % confidence "
            f"interval across seeds ({len(spec.seeds)} seeds: {list(spec.seeds)}). "
            "Loads in MB (2^20 bytes); downtime pooled over migrated users.",
            "",
        ]
        heads = [
            spec.axis or "",
            "method",
            "seeds",
            "steps",
            "cloud MB",
            "downtime ms",
            "migrated",
            "failed",
            "rejected",
            "on ESs",
            "decide ms",
        ]
        keys = list(METRICS)
        extra = [
            ("vs_reference_mb", f"- {REFERENCE} MB"),
            ("vs_reference_ratio", f"/ {REFERENCE}"),
            ("optimum_mb", "step-opt MB"),
            ("vs_opt_mb", "- step-opt MB"),
            ("vs_opt_ratio", "/ step-opt"),
        ]
        extra = [(k, h) for k, h in extra if any(k in r for r in table)]
        heads = [h for h in heads if h] + [h for _, h in extra]
        lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for r in table:
            cells = ([r["value"]] if spec.axis else []) + [
                r["method"],
                str(r["seeds"]),
                str(int(r["steps"])),
            ]
            cells += [fmt(r.get(k)) for k in keys] + [fmt(r.get(k)) for k, _ in extra]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        by_cell = load_cells(path, spec.axis)
        lines += _bound_lines(spec, bound_table(spec, by_cell))
        lines += _stage2_lines(spec, by_cell)
    text = "\n".join(lines)
    files.write_text_atomic(out, text)
    return text


def _bound_lines(spec: Spec, table: list[dict]) -> list[str]:
    if not table:
        return []
    lines = [
        "## Against the hindsight lower bound",
        "",
        "Every method's mean cloud load per step over the bound's steps (from step 0), the "
        "certified bound on ANY policy's load over the same steps (per step), the "
        "difference and the ratio; `min slack` < 0 would mean a broken bound.",
        "",
        "| "
        + " | ".join(
            ([spec.axis] if spec.axis else [])
            + [
                "method",
                "seeds",
                "steps",
                "cloud MB",
                "bound MB",
                "- bound MB",
                "/ bound",
                "min slack MB",
            ]
        )
        + " |",
    ]
    lines.append("|" + "---|" * (8 + bool(spec.axis)))
    for r in table:
        cells = ([r["value"]] if spec.axis else []) + [
            r["method"],
            str(r["seeds"]),
            str(r["steps"]),
        ]
        cells += [
            fmt(r[k])
            for k in ("cloud_mb", "bound_mb", "vs_bound_mb", "vs_bound_ratio", "min_slack_mb")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _stage2_lines(spec: Spec, cells: dict) -> list[str]:
    """With ``stage2_columns``: each exact method's tie-break (fewest migrations among plans
    serving stage 1's users) over its cells' last steps, pooled over seeds: steps whose load
    stage and whose tie-break are proven, mean migrations and mean proven lower bound, and
    the distribution of the time per step (both stages: the issue's figure of merit)."""
    if not spec.stage2_columns:
        return []
    pooled: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (value, method, _), cols in cells.items():
        status = cols.get("stage2_status")
        if not isinstance(status, list):  # absent, or all empty (read as NaNs)
            continue
        n = min(spec.last, len(status))
        pooled[(value, method)].append({k: v[-n:] for k, v in cols.items()})
    if not pooled:
        return []
    lines = [
        "## Tie-break of the exact methods",
        "",
        f"Over each cell's last {spec.last} steps, all seeds pooled: steps whose load stage "
        "(status) and whose tie-break (stage2_status) end optimal; the tie-break's mean "
        "value (stage2_objective) and mean proven lower bound (stage2_bound); seconds per "
        "step (decision_time_s, both stages): median, 90th percentile and maximum.",
        "",
        "| " + (f"{spec.axis} | " if spec.axis else "") + "method | steps | load proven | "
        "tie-break proven | migrations | bound | short of the bound | s median | s p90 | "
        "s max |",
        "|" + "---|" * (10 + bool(spec.axis)),
    ]
    for value, method in _ordered(spec, pooled):
        parts = pooled[(value, method)]
        steps = sum(len(c["status"]) for c in parts)
        load = sum(s == "optimal" for c in parts for s in c["status"])
        tie = sum(s == "optimal" for c in parts for s in c["stage2_status"])
        value_ = np.concatenate([c["stage2_objective"] for c in parts])
        bound = np.concatenate([c["stage2_bound"] for c in parts])
        cols = ([value] if spec.axis else []) + [method, str(steps), str(load), str(tie)]
        cols += [fmt(float(np.nanmean(value_))), fmt(float(np.nanmean(bound)))]
        cols.append(fmt(float(np.nanmean(value_ - bound))))
        seconds = np.concatenate([c["decision_time_s"] for c in parts])
        cols += [fmt(float(q)) for q in np.nanpercentile(seconds, (50, 90, 100))]
        lines.append("| " + " | ".join(cols) + " |")
    return lines + [""]


def _solve_table(spec: Spec, path: str | Path) -> list[str]:
    groups = defaultdict(list)
    for r in records.read_rows(path):
        groups[(r[spec.axis] if spec.axis else "", r["method"])].append(r)
    lines = [
        f"One instance per seed ({len(spec.seeds)} seeds); times in s, median (max).",
        "",
        "| instance | method | status | build s | solve s | decide s | gap median (max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (value, method), rs in groups.items():
        status = ", ".join(f"{s} {n}" for s, n in _counts(r["status"] for r in rs))
        cols = [value or f"{rs[0]['users']}x{rs[0]['servers']}", method, status]
        for c in ("build_s", "solve_s", "decision_time_s", "gap"):
            v = records.floats(rs, c)
            cols.append(f"{np.median(v):.3g} ({max(v):.3g})" if v else "-")
        lines.append("| " + " | ".join(cols) + " |")
    return lines + [""]


def _counts(items) -> list[tuple[str, int]]:
    c: dict[str, int] = defaultdict(int)
    for i in items:
        c[i] += 1
    return sorted(c.items())


def is_bound(spec: Spec, label: str) -> bool:
    return any(m.label == label and role(m) == registry.BOUND for m in spec.methods)


def num(v: str) -> float:
    return float(v) if is_number(v) else 0.0


def is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True
