"""PNG figures of a study, laid out like the paper's, read only from its results.csv.

- ``curves.png`` (Figs. 4 and 5): cloud load, mean downtime, migrated and migration-failed
  users per step, moving average of 20 steps, mean over seeds; one line per method (per
  discount factor in the discount study).
- ``sweep.png`` (Figs. 6 and 7): the four means over the last steps against the sweep value,
  95 % confidence intervals across seeds as error bars; ``users_on_edge.png`` (Fig. 8).
- ``gap.png`` (studies with a hindsight bound): each method's mean cloud load per step over
  the bound's steps, 95 % intervals across seeds, against the certified bound (one panel per
  sweep value).
- ``solve_time.png``: wall time per instance against the instance size (solve studies).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from dtasm_opt.core import files, records
from dtasm_opt.core.units import BYTES_PER_MB
from dtasm_opt.studies.cells import GREEDY_SUFFIX
from dtasm_opt.studies.report import (
    MOVING_AVERAGE,
    PANELS,
    bound_table,
    is_bound,
    is_number,
    num,
    sort_values,
    summarize,
)
from dtasm_opt.studies.spec import Spec


def write_plots(spec: Spec, path: str | Path, out_dir: str | Path) -> list[Path]:
    """The study's PNG figures (matplotlib, Agg backend); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    made = []
    if spec.kind == "solve":
        made.append(_plot_solve(plt, spec, path, out_dir / "solve_time.png"))
    else:
        table, ctx = summarize(spec, path)
        if spec.axis in (None, "discount"):
            made.append(_plot_curves(plt, spec, ctx["cells"], out_dir / "curves.png"))
        else:
            made.append(_plot_sweep(plt, spec, table, PANELS, out_dir / "sweep.png"))
            made.append(
                _plot_sweep(
                    plt,
                    spec,
                    table,
                    (("users_on_edge", "users on ESs"),),
                    out_dir / "users_on_edge.png",
                )
            )
        bounds = bound_table(spec, ctx["cells"])
        if bounds:
            made.append(_plot_gap(plt, spec, bounds, out_dir / "gap.png"))
    plt.close("all")
    return made


def _plot_gap(plt, spec: Spec, table: list[dict], target: Path) -> Path:
    values = sort_values(dict.fromkeys(r["value"] for r in table))
    fig, axes = plt.subplots(
        1, len(values), figsize=(6 * len(values), 4.2), constrained_layout=True, squeeze=False
    )
    for ax, value in zip(axes.flat, values, strict=True):
        rows = [r for r in table if r["value"] == value]
        x = np.arange(len(rows))
        y = [r["cloud_mb"][0] for r in rows]
        err = [r["cloud_mb"][1] or 0.0 for r in rows]
        ax.bar(x, y, yerr=err, capsize=3, color="tab:blue", alpha=0.8)
        bound = float(np.mean([r["bound_mb"][0] for r in rows]))
        ax.axhline(bound, color="k", ls="--", lw=1.2, label=f"hindsight bound {bound:.3g} MB")
        ax.set_xticks(x, [r["method"] for r in rows], rotation=30, ha="right")
        ax.set_ylabel("cloud load per step (MB)")
        steps = min(r["steps"] for r in rows)
        title = f"{spec.axis} = {value}, " if spec.axis else ""
        ax.set_title(f"{title}steps 0-{steps - 1}", loc="left")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{spec.name}: every method against the certified hindsight bound")
    save(fig, target)
    return target


def save(fig, target: Path) -> None:
    """A PNG written atomically, like every output of the project."""
    files.atomic_write(target, lambda fh: fig.savefig(fh, dpi=110, format="png"))


def _moving(x: np.ndarray, w: int) -> np.ndarray:
    w = max(1, min(w, len(x)))
    return np.convolve(x, np.ones(w) / w, mode="valid")


def _plot_curves(plt, spec: Spec, cells: dict, target: Path) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    lines = defaultdict(list)  # label -> per-seed column dicts
    order = {m.label: i for i, m in enumerate(spec.methods)}
    for (value, method, _seed), cols in sorted(
        cells.items(), key=lambda kv: (order.get(kv[0][1], 99), num(kv[0][0]), kv[0][2])
    ):
        if method.endswith(GREEDY_SUFFIX) or is_bound(spec, method):
            continue  # an evaluation after training, or a bound: not curves over the steps
        label = f"{method} γ={value}" if spec.axis == "discount" else method
        lines[label].append(cols)
    for label, seeds in lines.items():
        n = min(len(c["step"]) for c in seeds)
        step = seeds[0]["step"][:n]
        per_step = {
            "cloud_mb": np.mean([c["cloud_load_bytes"][:n] for c in seeds], 0) / BYTES_PER_MB,
            "downtime_ms": 1e3 * np.mean([c["mean_downtime_s"][:n] for c in seeds], 0),
            "migrated": np.mean([c["migrated"][:n] for c in seeds], 0),
            "migration_failed": np.mean([c["migration_failed"][:n] for c in seeds], 0),
        }
        w = min(MOVING_AVERAGE, max(1, n // 4))  # short (--quick) runs still draw lines
        for ax, (key, _) in zip(axes.flat, PANELS, strict=True):
            ax.plot(step[w - 1 :], _moving(per_step[key], w), label=label, lw=1.2)
    for ax, (letter, (_, ylabel)) in zip(axes.flat, zip("abcd", PANELS, strict=True), strict=True):
        ax.set_xlabel("step (episode)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"({letter})", loc="left")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(
        f"{spec.name}: moving average of {MOVING_AVERAGE} steps, mean of {len(spec.seeds)} seeds"
    )
    save(fig, target)
    return target


def _plot_sweep(plt, spec: Spec, table: list[dict], panels, target: Path) -> Path:
    n = len(panels)
    fig, axes = plt.subplots(
        (n + 1) // 2,
        min(n, 2),
        figsize=(11 if n > 1 else 6, 3.8 * ((n + 1) // 2)),
        constrained_layout=True,
        squeeze=False,
    )
    values = sort_values(dict.fromkeys(r["value"] for r in table))
    numeric = all(is_number(v) for v in values)
    xs = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    methods = list(dict.fromkeys(r["method"] for r in table))
    for ax, (key, ylabel), letter in zip(axes.flat, panels, "abcd", strict=False):
        for method in methods:
            rs = [r for r in table if r["method"] == method and key in r]
            x = [xs[r["value"]] for r in rs]
            y = [r[key][0] for r in rs]
            err = [r[key][1] or 0.0 for r in rs]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=method, lw=1.2)
        ax.set_xlabel(spec.axis)
        ax.set_ylabel(ylabel)
        if n > 1:
            ax.set_title(f"({letter})", loc="left")
        if not numeric:
            ax.set_xticks(list(xs.values()), values)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(
        f"{spec.name}: mean of the last {spec.last} steps, 95 % CI over {len(spec.seeds)} seeds"
    )
    save(fig, target)
    return target


def _plot_solve(plt, spec: Spec, path, target: Path) -> Path:
    rows = records.read_rows(path)
    sizes = list(dict.fromkeys(f"{r['users']}x{r['servers']}" for r in rows))
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for method in dict.fromkeys(r["method"] for r in rows):
        med, lo, hi = [], [], []
        for s in sizes:
            v = [
                float(r["decision_time_s"])
                for r in rows
                if r["method"] == method and f"{r['users']}x{r['servers']}" == s
            ]
            med.append(np.median(v))
            lo.append(med[-1] - min(v))
            hi.append(max(v) - med[-1])
        ax.errorbar(range(len(sizes)), med, yerr=[lo, hi], marker="o", capsize=3, label=method)
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_yscale("log")
    ax.set_xlabel("instance (users x ESs)")
    ax.set_ylabel("wall time per instance (s): median, min-max")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.suptitle(spec.name)
    save(fig, target)
    return target
