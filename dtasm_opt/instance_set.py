"""Benchmark instance sets with reference values, the way MIPLIB ships them (issue 3).

``write_set`` generates N instances of one family (a :class:`Scenario`, seeds seed0 .. seed0 +
N - 1), solves each with an exact method, checks the solution independently
(:func:`dtasm_opt.verify.verify`) and records per instance the objective (the simulator's cloud
load of the returned action), the proven bound, the status, the solve time and the solver with
its version in ``manifest.json``. The manifest is rewritten atomically after every instance,
so an interrupted run resumes where it stopped; a folder holding another family is refused.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from dtasm_opt import files
from dtasm_opt.errors import InputError
from dtasm_opt.generator import Scenario, generate_instance
from dtasm_opt.methods import MethodSettings, make_method
from dtasm_opt.solution import evaluate
from dtasm_opt.verify import verify

SET_FORMAT = "dtasm-set/1"
MANIFEST = "manifest.json"
SOLVER_PACKAGE = {"milp": "highspy", "cpsat": "ortools"}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _family(scenario: Scenario, seed0: int, name: str) -> dict:
    # The count is not part of the family: a larger --count extends the set.
    return {"name": name, "seed0": seed0, **asdict(scenario)}


def _load_manifest(path: Path, family: dict, solver: dict) -> dict:
    """The manifest already in the folder (to resume), or a new one."""
    if not path.exists():
        return {"format": SET_FORMAT, "family": family, "solver": solver, "instances": []}
    doc = files.read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != SET_FORMAT:
        raise InputError(f"{path}: not a {SET_FORMAT} manifest; use an empty folder")
    if doc.get("family") != family or doc.get("solver") != solver:
        raise InputError(
            f"{path}: the folder holds another family or solver setting; use another folder"
        )
    return doc


def write_set(
    folder: str | Path,
    scenario: Scenario,
    seed0: int,
    count: int,
    *,
    name: str | None = None,
    method: str = "milp",
    settings: MethodSettings | None = None,
    progress: bool = True,
) -> dict:
    """Generate, solve and record ``count`` instances in ``folder``; returns the manifest."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--set: {folder} exists and is not a folder")
    if method not in SOLVER_PACKAGE:
        raise InputError(
            f"--method: a set's reference values need an exact method, "
            f"one of {sorted(SOLVER_PACKAGE)}"
        )
    settings = settings or MethodSettings(seed=seed0, time_limit_s=60.0)
    family_name = name or f"u{scenario.users}-h{scenario.servers}"
    package = SOLVER_PACKAGE[method]
    solver = {
        "method": method,
        "package": package,
        "version": _version(package),
        "settings": asdict(settings),
    }
    solver_impl = make_method(method, settings)  # refuses bad settings before any file
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    manifest = _load_manifest(path, _family(scenario, seed0, family_name), solver)
    done = {entry["name"] for entry in manifest["instances"]}
    for i in range(count):
        inst_name = f"{family_name}-{i:03d}"
        if inst_name in done:
            continue
        start = time.perf_counter()
        inst = generate_instance(scenario, seed0 + i, name=inst_name)
        sol = evaluate(solver_impl, inst)
        doc = sol.to_dict()
        problems = verify(inst, doc)
        if problems:  # a solver bug: never ship a wrong reference value
            raise RuntimeError(f"{inst_name}: reference solution invalid: {problems[0]}")
        files.write_json(folder / f"{inst_name}.json.gz", inst.to_dict())
        files.write_json(folder / f"{inst_name}.solution.json", doc)
        manifest["instances"].append(
            {
                "name": inst_name,
                "file": f"{inst_name}.json.gz",
                "solution": f"{inst_name}.solution.json",
                "seed": seed0 + i,
                "objective_bytes": sol.cloud_load_bytes,
                "bound_bytes": sol.bound_bytes,
                "gap": sol.gap,
                "status": sol.status,
                "solve_time_s": sol.solve_time_s,
                "solver": method,
                "solver_version": solver["version"],
            }
        )
        files.write_json(path, manifest)  # after the instance's files: resume never loses one
        if progress:
            print(
                f"[{i + 1}/{count}] {inst_name}: {sol.status}, cloud load "
                f"{sol.cloud_load_bytes:.6g} B, gap {sol.gap}, "
                f"{time.perf_counter() - start:.1f} s",
                file=sys.stderr,
            )
    return manifest
