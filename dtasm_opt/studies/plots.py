"""PNG figures of a study, laid out like the paper's, read only from its results.csv.

- ``curves.png`` (Figs. 4 and 5): cloud load, mean downtime, migrated and migration-failed
  users per step, moving average of 20 steps, mean over seeds; one line per method (per
  discount factor in the discount study). A trained agent is drawn over its training steps
  when they span the other methods' steps, else over its greedy rollout (the same steps as
  the others), so that one axis never mixes horizons.
- ``sweep.png`` (Figs. 6 and 7): the four means over the last steps against the sweep value;
  ``users_on_edge.png`` (Fig. 8).
- ``gap.png`` (studies with a hindsight bound): each method's mean cloud load per step over
  the bound's steps against the certified bound (one panel per sweep value).
- ``solve_time.png``: wall time per instance against the instance size, each method's time
  limit marked (solve studies).

Every figure uses :mod:`.style` (the paper's names, one colour and marker per method in every
figure), one legend shared by its panels, units on every axis, and 95 % bootstrap percentile
intervals over seeds (:func:`.stats.bootstrap_ci`), which stay inside the quantity's range.
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
from dtasm_opt.studies.stats import bootstrap_ci
from dtasm_opt.studies.style import axis_label, style

INTERVAL = "95 % bootstrap interval over seeds"


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
            users = (("users_on_edge", "users on ESs (per step)"),)
            made.append(_plot_sweep(plt, spec, table, users, out_dir / "users_on_edge.png"))
        bounds = bound_table(spec, ctx["cells"])
        if bounds:
            made.append(_plot_gap(plt, spec, bounds, out_dir / "gap.png"))
    plt.close("all")
    return made


def save(fig, target: Path) -> None:
    """A PNG written atomically, like every output of the project."""
    files.atomic_write(target, lambda fh: fig.savefig(fh, dpi=110, format="png"))


def shared_legend(fig, axes) -> None:
    """One legend for all panels, below them (each label once)."""
    handles: dict = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center",
               ncol=min(len(handles), 5), fontsize=8, frameon=False)  # fmt: skip


def _errors(per_seed: list[list[float]]) -> tuple[list[float], list[list[float]]]:
    """Means and asymmetric error bars (bootstrap percentile) of each group of seeds."""
    ci = [bootstrap_ci(v) for v in per_seed]
    means = [c[0] for c in ci]
    return means, [[c[0] - c[1] for c in ci], [c[2] - c[0] for c in ci]]


def _plot_gap(plt, spec: Spec, table: list[dict], target: Path) -> Path:
    values = sort_values(dict.fromkeys(r["value"] for r in table))
    fig, axes = plt.subplots(
        1, len(values), figsize=(6 * len(values), 4.6), layout="constrained", squeeze=False
    )
    for ax, value in zip(axes.flat, values, strict=True):
        rows = [r for r in table if r["value"] == value]
        styles = [style(spec, r["method"]) for r in rows]
        x = np.arange(len(rows))
        means, err = _errors([r["cloud_mb_per_seed"] for r in rows])
        ax.bar(x, means, yerr=err, capsize=3, color=[s["color"] for s in styles], alpha=0.85)
        bound = float(np.mean([r["bound_mb"][0] for r in rows]))
        ax.axhline(bound, color="k", ls="--", lw=1.2, label=f"hindsight bound ({bound:.3g} MB)")
        ax.set_xticks(x, [s["label"] for s in styles], rotation=30, ha="right")
        ax.set_ylabel("cloud load per step (MB)")
        steps = min(r["steps"] for r in rows)
        title = f"{axis_label(spec.axis)} = {value}, " if spec.axis else ""
        ax.set_title(f"{title}steps 0-{steps - 1}", loc="left")
        ax.grid(axis="y", alpha=0.3)
    shared_legend(fig, axes)
    fig.suptitle(f"{spec.name}: every method against the certified hindsight bound\n({INTERVAL})")
    save(fig, target)
    return target


def _moving(x: np.ndarray, w: int) -> np.ndarray:
    w = max(1, min(w, len(x)))
    return np.convolve(x, np.ones(w) / w, mode="valid")


def _curve_rows(spec: Spec, cells: dict) -> dict[tuple[str, str], list[dict]]:
    """(label, sweep value) -> per-seed columns of the curves to draw."""
    lines: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (value, method, _seed), cols in cells.items():
        if not is_bound(spec, method):
            lines[(method, value)].append(cols)
    others = [len(c["step"]) for (m, _), cs in lines.items() for c in cs
              if not m.endswith(GREEDY_SUFFIX) and (m + GREEDY_SUFFIX, _) not in lines]  # fmt: skip
    horizon = max(others) if others else None
    keep = {}
    for (method, value), seeds in lines.items():
        greedy = (method + GREEDY_SUFFIX, value)
        if method.endswith(GREEDY_SUFFIX):
            trained = (method.removesuffix(GREEDY_SUFFIX), value)
            longer = horizon is not None and min(len(c["step"]) for c in lines[trained]) > (
                2 * horizon)  # fmt: skip
            if trained in lines and not longer:
                continue  # the training curve spans the others' steps: draw that instead
        elif greedy in lines and horizon is not None:
            if min(len(c["step"]) for c in seeds) > 2 * horizon:
                continue  # its greedy rollout covers the others' steps: draw that instead
        keep[(method, value)] = seeds
    return keep


def _plot_curves(plt, spec: Spec, cells: dict, target: Path) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")
    order = {m.label: i for i, m in enumerate(spec.methods)}
    lines = _curve_rows(spec, cells)
    # In the discount study one method has a line per gamma: a colour scale tells them apart.
    gammas = sort_values({v for _, v in lines}) if spec.axis == "discount" else []
    for method, value in sorted(
        lines, key=lambda k: (order.get(k[0].removesuffix(GREEDY_SUFFIX), 99), num(k[1]))
    ):
        seeds = lines[(method, value)]
        st = style(spec, method)
        if spec.axis == "discount":
            st["label"] += f", γ = {value}"
            st["color"] = plt.cm.viridis(gammas.index(value) / max(1, len(gammas) - 1) * 0.9)
        n = min(len(c["step"]) for c in seeds)
        step = seeds[0]["step"][:n]
        per_step = {
            "cloud_mb": np.mean([c["cloud_load_bytes"][:n] for c in seeds], 0) / BYTES_PER_MB,
            "downtime_ms": 1e3 * np.mean([c["mean_downtime_s"][:n] for c in seeds], 0),
            "migrated": np.mean([c["migrated"][:n] for c in seeds], 0),
            "migration_failed": np.mean([c["migration_failed"][:n] for c in seeds], 0),
        }
        w = min(MOVING_AVERAGE, max(1, n // 4))  # short (--quick) runs still draw lines
        st.pop("marker")
        for ax, (key, _) in zip(axes.flat, PANELS, strict=True):
            ax.plot(step[w - 1 :], _moving(per_step[key], w), lw=1.2, **st)
    for ax, (letter, (_, ylabel)) in zip(axes.flat, zip("abcd", PANELS, strict=True), strict=True):
        ax.set_xlabel("step (episode)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"({letter})", loc="left")
        ax.grid(alpha=0.3)
    shared_legend(fig, axes)
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
        figsize=(11 if n > 1 else 6.5, 4.2 * ((n + 1) // 2) + 0.6),
        layout="constrained",
        squeeze=False,
    )
    values = sort_values(dict.fromkeys(r["value"] for r in table))
    numeric = all(is_number(v) for v in values)
    xs = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    methods = list(dict.fromkeys(r["method"] for r in table))
    for ax, (key, ylabel), letter in zip(axes.flat, panels, "abcd", strict=False):
        for method in methods:
            rs = [r for r in table if r["method"] == method and key in r["per_seed"]]
            means, err = _errors([r["per_seed"][key] for r in rs])
            ax.errorbar([xs[r["value"]] for r in rs], means, yerr=err, capsize=3, lw=1.2,
                        **style(spec, method))  # fmt: skip
        ax.set_xlabel(axis_label(spec.axis))
        ax.set_ylabel(ylabel)
        if n > 1:
            ax.set_title(f"({letter})", loc="left")
        if not numeric:
            ax.set_xticks(list(xs.values()), values)
        ax.grid(alpha=0.3)
    shared_legend(fig, axes)
    fig.suptitle(f"{spec.name}: mean of the last {spec.last} steps, {INTERVAL}")
    save(fig, target)
    return target


def _plot_solve(plt, spec: Spec, path, target: Path) -> Path:
    rows = records.read_rows(path)
    sizes = list(dict.fromkeys(f"{r['users']}x{r['servers']}" for r in rows))
    fig, ax = plt.subplots(figsize=(7.5, 5.2), layout="constrained")
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
        st = style(spec, method)
        ax.errorbar(range(len(sizes)), med, yerr=[lo, hi], capsize=3, **st)
        limit = spec.method(method).options.get("time_limit_s")
        if limit is not None:  # a solve's stages can each take the limit
            ax.axhline(limit, color="0.35", ls=":", lw=1,
                       label=f"time limit per stage ({limit:g} s)")  # fmt: skip
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_yscale("log")
    ax.set_xlabel("instance (users U × edge servers H)")
    ax.set_ylabel("wall time per instance (s): median, min-max")
    ax.grid(alpha=0.3, which="both")
    shared_legend(fig, [ax])
    fig.suptitle(spec.name)
    save(fig, target)
    return target
