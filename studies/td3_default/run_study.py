"""The paper's Fig. 4 on the default scenario (U=200, H=8, xi=1.2 s, stream seed 1, T=500).

    python studies/td3_default/run_study.py [--steps 2000] [--warm-start-steps 0]
        [--teacher danearest] [--seed 0] [--actor shared] [--explore-noise 0.2]
        [--mask | --no-mask] [--stay-bias 3] [--skip-train]

The defaults are the final configuration (README.md); ``--actor flat --explore-noise 0.5
--no-mask --stay-bias 0`` is the paper's agent.

1. Trains TD3 with ``dtasm_opt.train`` into ``train/`` (steps.csv, last.pt, manifest.json).
2. Rolls the five baselines over the same stream for the same number of steps
   (``dtasm_opt.rollout``; the stream restarts every T steps exactly as in training) into
   ``baselines.csv``, and the trained greedy agent (``td3:train/policy.pt``, no exploration) over
   the last T steps' worth of one episode into ``greedy.csv``.
3. Plots ``fig4.png`` (cloud load MB, mean downtime ms, migrated, migration-failed vs step,
   moving average over 20 steps) and writes ``table.md`` (last 500 steps), adding the runs of
   ``sweep.py`` (``sweep_summary.json``), ``train_paper/`` and ``train_paper_mask/`` (the
   paper's agent without and with the action mask, curves too) and MILP-greedy's rollout
   (``../milp_greedy_default``) if present.
Plots read only the CSVs.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from dtasm_opt.cli import HelpFormatter
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.experiments import rollout
from dtasm_opt.solvers.td3.config import TD3Config, TrainOptions
from dtasm_opt.solvers.td3.training import train

HERE = Path(__file__).resolve().parent
# Other runs of sweep.py kept with their step CSVs (curves in fig4.png): label -> folder.
EXTRA = {"td3 paper agent": "train_paper", "td3 paper agent + mask": "train_paper_mask"}
SHOWN = ("shared_mask_bias3", "paper", "paper_mask")  # sweep variants kept in folders here
MILP = HERE.parent / "milp_greedy_default" / "rollout.csv"
BASELINES = ("womig-stable", "womig-dynamic", "random", "nearest", "danearest")
LAST = 500
PAPER = "TD3 (paper, Fig. 4): about 4 MB, about 8 migrated, about 0 failed"


def read(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per method, per column: the rows of a step CSV as float arrays (in step order)."""
    out: dict[str, dict[str, list]] = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            d = out.setdefault(r["method"], {})
            for k in (
                "step",
                "cloud_load_bytes",
                "mean_downtime_s",
                "migrated",
                "migration_failed",
            ):
                d.setdefault(k, []).append(float(r[k]))
    return {m: {k: np.asarray(v) for k, v in d.items()} for m, d in out.items()}


def summary(d: dict[str, np.ndarray], last: int) -> dict:
    sl = slice(-last, None)
    mig = d["migrated"][sl]
    down = (d["mean_downtime_s"][sl] * mig).sum()
    return {
        "steps": len(mig),
        "cloud_mb": d["cloud_load_bytes"][sl].mean() / 2**20,
        "downtime_ms": 1e3 * down / mig.sum() if mig.sum() else 0.0,
        "migrated": mig.mean(),
        "failed": d["migration_failed"][sl].mean(),
    }


def moving(x: np.ndarray, k: int = 20) -> np.ndarray:
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = np.empty_like(x)
    for i in range(len(x)):
        lo = max(0, i + 1 - k)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def plot(curves: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("cloud_load_bytes", 1 / 2**20, "(a) load forwarded to the cloud (MB)"),
        ("mean_downtime_s", 1e3, "(b) mean service downtime (ms)"),
        ("migrated", 1.0, "(c) migrated users"),
        ("migration_failed", 1.0, "(d) migration-failed users"),
    )
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    for ax, (col, scale, title) in zip(axes.ravel(), panels, strict=True):
        for name, d in curves.items():
            ax.plot(d["step"], moving(d[col] * scale), lw=1.6 if name == "td3" else 1.0, label=name)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step (episode in the paper)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("U=200, H=8, xi=1.2 s, stream seed 1; moving average over 20 steps", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def sweep_rows(path: Path) -> list[tuple[str, dict]]:
    """Rows of ``sweep.py``'s variants (no downtime column there)."""
    import json

    if not path.exists():
        return []
    out = []
    for name, v in json.loads(path.read_text())["variants"].items():
        if name in SHOWN:
            continue
        for key, label in (("train_last500", "train"), ("greedy_episode", "greedy")):
            if key in v:
                out.append((f"sweep {name} ({label})", {**v[key], "downtime_ms": float("nan")}))
    return out


def table(rows: list[tuple[str, dict]], note: str) -> str:
    head = "| method | steps | cloud load (MB) | mean downtime (ms, pooled) | migrated | failed |"
    lines = [head, "|---|---|---|---|---|---|"]
    for name, s in rows:
        down = "-" if np.isnan(s["downtime_ms"]) else f"{s['downtime_ms']:.0f}"
        lines.append(
            f"| {name} | {s['steps']} | {s['cloud_mb']:.2f} | {down} | "
            f"{s['migrated']:.1f} | {s['failed']:.2f} |"
        )
    lines.append("| paper TD3 (Fig. 4) | last 500 | ~4 | ~DANearest's | ~8 | ~0 |")
    return "\n".join(lines) + "\n\n" + note + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--warm-start-steps", type=int, default=0)
    p.add_argument("--teacher", default="danearest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--actor", choices=("flat", "shared"), default="shared")
    p.add_argument("--explore-noise", type=float, default=0.2)
    p.add_argument("--mask", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--stay-bias", type=float, default=3.0)
    p.add_argument("--skip-train", action="store_true", help="reuse train/")
    args = p.parse_args(argv)
    stream = generate_stream(Scenario(), seed=1, steps=500)
    tdir = HERE / "train"
    if not args.skip_train:
        cfg = TD3Config(
            seed=args.seed,
            threads=args.threads,
            actor=args.actor,
            explore_noise=args.explore_noise,
            mask_infeasible=args.mask,
            stay_bias=args.stay_bias,
        )
        train(
            stream,
            cfg,
            tdir,
            args.steps,
            checkpoint_every=500,
            options=TrainOptions(warm_start_steps=args.warm_start_steps, teacher=args.teacher),
            resume=(tdir / "last.pt").exists(),
        )
    curves = {"td3": read(tdir / "steps.csv")["td3"]}
    for label, folder in EXTRA.items():
        if (HERE / folder / "steps.csv").exists():
            curves[label] = read(HERE / folder / "steps.csv")["td3"]
    steps = len(curves["td3"]["step"])
    base = HERE / "baselines.csv"
    if not base.exists():
        rollout.run(stream, BASELINES, base, steps=steps, settings=MethodSettings(seed=args.seed))
    curves.update(read(base))
    greedy = HERE / "greedy.csv"
    if not greedy.exists():
        name = f"td3:{tdir / 'policy.pt'}"
        rollout.run(stream, [name], greedy, steps=stream.n_steps, settings=MethodSettings())
    greedy_run = next(iter(read(greedy).values()))
    plot(curves, HERE / "fig4.png")
    last = min(LAST, steps)
    rows = [("td3 (training, with exploration)", summary(curves["td3"], last))]
    rows.append(("td3 greedy (trained actor, one episode)", summary(greedy_run, LAST)))
    for label, folder in EXTRA.items():
        if label in curves:
            rows.append((f"{label} (training)", summary(curves[label], last)))
            g = next(iter(read(HERE / folder / "greedy.csv").values()))
            rows.append((f"{label} (greedy episode)", summary(g, LAST)))
    rows += sweep_rows(HERE / "sweep_summary.json")
    rows += [(m, summary(curves[m], last)) for m in BASELINES]
    if MILP.exists():
        milp = next(iter(read(MILP).values()))
        n = len(milp["step"])
        rows.append((f"milp (MILP-greedy, first {n} steps of one episode)", summary(milp, n)))
    note = (
        f"Last {last} of {steps} steps (baselines: the same steps of the same stream). "
        f"Final TD3: warm start {args.warm_start_steps} steps, seed {args.seed}, actor "
        f"{args.actor}, exploration noise {args.explore_noise}, mask {args.mask}, stay bias "
        f"{args.stay_bias}. Sweep rows: `sweep.py` (train = last 500 training steps, greedy = "
        f"one episode of the trained actor; downtime not recorded there). {PAPER}."
    )
    (HERE / "table.md").write_text(table(rows, note))
    print((HERE / "table.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
