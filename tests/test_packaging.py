"""Layout guard (docs/design.md §6): the top-level models/ and solvers/ folders are installed as
the subpackages dtasm_opt.models and dtasm_opt.solvers, with their own subpackages."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("sub", ["models", "solvers"])
def test_subpackage_comes_from_the_top_level_folder(sub):
    mod = importlib.import_module(f"dtasm_opt.{sub}")
    where = Path(mod.__file__).resolve().parent
    assert where == ROOT / sub
    assert not (ROOT / "dtasm_opt" / sub).exists()


def test_modules_inside_the_mapped_folders_import():
    pairs = importlib.import_module("dtasm_opt.models.pairs")
    nearest = importlib.import_module("dtasm_opt.solvers.heuristics.nearest")
    milp = importlib.import_module("dtasm_opt.solvers.exact.milp")
    assert Path(pairs.__file__).resolve() == ROOT / "models" / "pairs.py"
    assert Path(nearest.__file__).resolve() == ROOT / "solvers" / "heuristics" / "nearest.py"
    assert Path(milp.__file__).resolve() == ROOT / "solvers" / "exact" / "milp.py"


def test_core_package_is_the_checkout():
    import dtasm_opt

    assert Path(dtasm_opt.__file__).resolve().parent == ROOT / "dtasm_opt"


def test_pyproject_lists_every_package_folder():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setup = conf["tool"]["setuptools"]
    assert setup["package-dir"]["dtasm_opt.models"] == "models"
    assert setup["package-dir"]["dtasm_opt.solvers"] == "solvers"
    folders = {"dtasm_opt": ROOT / "dtasm_opt", "dtasm_opt.models": ROOT / "models"}
    folders["dtasm_opt.solvers"] = ROOT / "solvers"
    assert setup["package-dir"]["dtasm_opt.study_specs"] == "studies"  # specs: package data
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join((name, *rel)))
    found.add("dtasm_opt.study_specs")  # studies/ itself; its result folders are not packages
    assert found == set(setup["packages"])  # a package missing here is not installed
    requires = " ".join(conf["build-system"]["requires"])
    assert "setuptools>=77" in requires.replace(" ", "")  # 77: the SPDX license string


def test_installed_metadata_names_the_license_and_ships_its_text():
    # An SPDX expression, not the table form that setuptools stops building in 2027, and the
    # text in the distribution: the benchmark sets are meant to be reused under it.
    from importlib.metadata import metadata

    meta = metadata("dtasm-opt")
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
