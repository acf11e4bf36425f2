"""Start-up cost of ``python -m dtasm_opt.solve`` per method: wall time, modules imported,
import time, and whether Pyomo or torch were loaded.

    python benchmarks/bench_startup.py [--methods nearest,milp] [--repeat 7] [--against REV]

Each run solves step 0 of a generated (200, 8) instance in a fresh interpreter with
``-X importtime``. With ``--against REV`` the same runs are made, interleaved, on the package
as it was at git revision REV (extracted with ``git archive`` and staged with models/ and
solvers/ inside dtasm_opt/, as installed), so both columns come from one noisy machine at the
same moments. Prints medians and the ratio after/before.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from dtasm_opt.cli import HelpFormatter

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pyomo", "torch", "gymnasium", "matplotlib", "ortools")


def stage(rev: str, into: Path) -> Path:
    """The package at ``rev`` laid out as installed; returns the folder to put on sys.path."""
    data = subprocess.run(
        ["git", "archive", rev, "dtasm_opt", "models", "solvers"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    src = into / "src"
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(src, filter="data")
    site = into / "site"
    (site / "dtasm_opt").parent.mkdir(parents=True)
    (src / "dtasm_opt").rename(site / "dtasm_opt")
    (src / "models").rename(site / "dtasm_opt" / "models")
    (src / "solvers").rename(site / "dtasm_opt" / "solvers")
    return site


def one_run(method: str, inst: Path, out: Path, pythonpath: Path | None) -> dict:
    env = None
    if pythonpath is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    cmd = [sys.executable, "-X", "importtime", "-m", "dtasm_opt.solve", str(inst)]
    cmd += ["--method", method, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out.parent)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{method}: exit {proc.returncode}: {proc.stderr[-500:]}")
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")][1:]
    names = [line.split("|")[2].strip() for line in lines]
    self_us = sum(int(line.split("|")[0].split(":")[1]) for line in lines)
    return {
        "wall_s": wall,
        "modules": len(names),
        "import_s": self_us / 1e6,
        "heavy": sorted({n.split(".")[0] for n in names} & set(HEAVY)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--methods", default="nearest,milp")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--against", metavar="REV", default=None, help="a git revision to compare")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from dtasm_opt.core import files
    from dtasm_opt.core.generator import Scenario, generate_instance

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        inst = tmp_path / "inst.json"
        files.write_json(inst, generate_instance(Scenario(users=200, servers=8), 1).to_dict())
        variants = {"now": None}
        if args.against:
            variants = {args.against: stage(args.against, tmp_path / "old"), **variants}
        print(f"solve step 0 of a (200, 8) instance; medians of {args.repeat} fresh interpreters")
        print(f"{'method':<8} {'code':<10} {'wall s':>7} {'import s':>9} {'modules':>8}  heavy")
        for method in args.methods.split(","):
            runs: dict[str, list[dict]] = {k: [] for k in variants}
            for _ in range(args.repeat):  # interleaved: both see the same machine load
                for name, path in variants.items():
                    runs[name].append(one_run(method, inst, tmp_path / "sol.json", path))
            med = {}
            for name, rs in runs.items():
                med[name] = {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "import_s")}
                print(
                    f"{method:<8} {name[:10]:<10} {med[name]['wall_s']:7.3f} "
                    f"{med[name]['import_s']:9.3f} {rs[0]['modules']:8d}  "
                    f"{','.join(rs[0]['heavy']) or '-'}"
                )
            if args.against:
                ratio = med["now"]["wall_s"] / med[args.against]["wall_s"]
                print(f"{method:<8} {'ratio':<10} {ratio:7.2f}  (now / {args.against})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
