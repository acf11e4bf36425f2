"""Benchmark instance sets with reference values, the way MIPLIB ships them.

:func:`write_set` generates N instances of one family (a :class:`Scenario`, seeds seed0 ..
seed0 + N - 1, and the step: step 0 of each seed's stream, or with ``at_step`` T the state
that MILP-greedy reaches at step T, :func:`~dtasm_opt.experiments.states.rollout_state`),
solves each with an exact method of the registry, checks the solution
independently (:func:`dtasm_opt.core.verify.verify`) and records per instance the objective
(the simulator's cloud load of the returned action), the proven bound, the status, the solve
time and the solver with its version in ``manifest.json``. The manifest is rewritten
atomically after every instance, so an interrupted run resumes where it stopped; a folder
holding another family is refused.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.limits import MAX_COUNT, check_at_most
from dtasm_opt.core.locks import OutputLock
from dtasm_opt.core.method import Method, MethodSettings
from dtasm_opt.core.solution import Solution, judge
from dtasm_opt.core.verify import verify
from dtasm_opt.errors import InputError
from dtasm_opt.experiments.states import rollout_state
from dtasm_opt.solvers import registry

SET_FORMAT = "dtasm-set/1"
# A set's states come from a rollout of at most this many steps per instance (each step
# solves two MILP roots: up to half a minute at (1000, 16)).
MAX_AT_STEP = 10_000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a family name: no path, no dot first
MANIFEST = "manifest.json"


def _version(package: str | None) -> str | None:
    try:
        return None if package is None else metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _family(scenario: Scenario, seed0: int, name: str, at_step: int) -> dict:
    # The count is not part of the family: a larger --count extends the set. at_step is
    # written only when > 0, so that a step-0 set written before it existed still resumes.
    family = {"name": name, "seed0": seed0, **asdict(scenario)}
    return family | ({"at_step": at_step} if at_step else {})


def _with_defaults(described: object) -> object:
    """A manifest's solver description with the settings added since it was written at their
    defaults (which is what the run used): an older set resumes."""
    if not isinstance(described, dict) or not isinstance(described.get("settings"), dict):
        return described
    return {**described, "settings": {**asdict(MethodSettings()), **described["settings"]}}


def _load_manifest(path: Path, family: dict, solver: dict) -> dict:
    """The manifest already in the folder (to resume), or a new one."""
    if not path.exists():
        return {"format": SET_FORMAT, "family": family, "solver": solver, "instances": []}
    doc = files.read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != SET_FORMAT:
        raise InputError(f"{path}: not a {SET_FORMAT} manifest; use an empty folder")
    if doc.get("family") != family or _with_defaults(doc.get("solver")) != solver:
        raise InputError(
            f"{path}: the folder holds another family or solver setting; use another folder"
        )
    return doc


def reference_solver(method: str, settings: MethodSettings) -> tuple[Method, dict]:
    """An exact method and the manifest's description of it (package and version)."""
    entry = registry.info(method)
    if not entry.exact or entry.role != registry.POLICY:
        exact = ", ".join(registry.policies(exact=True))
        raise InputError(f"--method: a set's reference values need an exact method: {exact}")
    described = {
        "method": method,
        "package": entry.package,
        "version": _version(entry.package),
        "settings": asdict(settings),
    }
    return registry.make_method(method, settings), described  # refuses bad settings


def solve_reference(inst: Instance, solver: Method, described: dict) -> tuple[Solution, dict]:
    """Solve ``inst``, check the solution independently, and return its manifest entry."""
    sol = judge(solver, inst)
    problems = verify(inst, sol.to_dict())
    if problems:  # a solver bug: never ship a wrong reference value
        raise RuntimeError(f"{inst.name}: reference solution invalid: {problems[0]}")
    entry = {
        "name": inst.name,
        "file": f"{inst.name}.json.gz",
        "solution": f"{inst.name}.solution.json",
        "seed": inst.meta.get("seed"),
        "step": inst.meta.get("step", 0),
        "objective_bytes": sol.cloud_load_bytes,
        "bound_bytes": sol.bound_bytes,
        "gap": sol.gap,
        "status": sol.status,
        "solve_time_s": sol.solve_time_s,
        "solver": described["method"],
        "solver_version": described["version"],
    }
    return sol, entry


def write_set(
    folder: str | Path,
    scenario: Scenario,
    seed0: int,
    count: int,
    *,
    name: str | None = None,
    method: str = registry.REFERENCE,
    settings: MethodSettings | None = None,
    at_step: int = 0,
    on_instance: Callable[[int, int, dict, float], None] | None = None,
) -> dict:
    """Generate, solve and record ``count`` instances in ``folder``; returns the manifest.
    ``at_step`` T > 0 takes each seed's state at step T of a MILP-greedy rollout instead of
    step 0. ``on_instance(done, count, entry, seconds)`` reports each new instance."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--set: {folder} exists and is not a folder")
    check_at_most(count, MAX_COUNT, "--count")
    check_at_most(at_step, MAX_AT_STEP, "--at-step")
    if int(at_step) != at_step or at_step < 0:
        raise InputError(f"--at-step: {at_step} is invalid, must be an integer >= 0")
    settings = settings or MethodSettings(seed=seed0, time_limit_s=60.0)
    solver, described = reference_solver(method, settings)
    family_name = name or f"u{scenario.users}-h{scenario.servers}"
    if not NAME.fullmatch(family_name):
        raise InputError(
            f"--name: {family_name!r} is not a plain name (letters, digits, . _ -; it names "
            "files inside the set's folder)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with OutputLock(folder, folder=True):
        family = _family(scenario, seed0, family_name, int(at_step))
        return _write_set_locked(folder, family, scenario, count, solver, described, on_instance)


def _write_set_locked(
    folder: Path,
    family: dict,
    scenario: Scenario,
    count: int,
    solver: Method,
    described: dict,
    on_instance: Callable[[int, int, dict, float], None] | None,
) -> dict:
    path = folder / MANIFEST
    manifest = _load_manifest(path, family, described)
    done = {entry["name"] for entry in manifest["instances"]}
    for i in range(count):
        inst_name = f"{family['name']}-{i:03d}"
        if inst_name in done:
            continue
        start = time.perf_counter()
        seed = family["seed0"] + i
        inst = rollout_state(scenario, seed, family.get("at_step", 0), name=inst_name)
        sol, entry = solve_reference(inst, solver, described)
        files.write_json(folder / entry["file"], inst.to_dict())
        files.write_json(folder / entry["solution"], sol.to_dict())
        manifest["instances"].append(entry)
        files.write_json(path, manifest)  # after the instance's files: resume never loses one
        if on_instance is not None:
            on_instance(i + 1, count, entry, time.perf_counter() - start)
    return manifest
