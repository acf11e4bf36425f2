"""The architecture's promises that a test can check at run time (docs/design.md §6).

import-linter checks the static import graph in CI (``make lint``); these check what is
actually loaded, and the "one declaration" rules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from dtasm_opt.core import records
from dtasm_opt.solvers import registry

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "pyomo", "gymnasium", "matplotlib", "ortools")


def loaded_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(out.stdout.split())


def test_import_dtasm_opt_loads_no_heavy_package():
    loaded = loaded_after("import dtasm_opt")
    assert not loaded & set(HEAVY + ("highspy", "numpy")), loaded & set(HEAVY)


def test_public_api_names_resolve_lazily():
    import dtasm_opt

    for name in dtasm_opt.__all__:
        assert getattr(dtasm_opt, name) is not None, name
    with pytest.raises(AttributeError):
        dtasm_opt.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("method", "allowed"),
    [("nearest", set()), ("milp", {"highspy"})],
)
def test_solve_loads_only_what_the_method_needs(tmp_path, method, allowed):
    from dtasm_opt.core import files
    from dtasm_opt.core.generator import Scenario, generate_instance

    inst = tmp_path / "i.json"
    files.write_json(inst, generate_instance(Scenario(users=20, servers=3), seed=1).to_dict())
    args = [str(inst), "--method", method, "--out", str(tmp_path / "s.json")]
    code = f"from dtasm_opt.solve import main\nassert main({args!r}) == 0"
    loaded = loaded_after(code)
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    assert allowed <= loaded


def test_every_registry_entry_imports_and_is_described():
    for name in registry.available_methods():
        entry = registry.info(name.split(":")[0] + (":x" if ":" in name else ""))
        assert callable(registry.factory(entry)), name
        assert entry.label and entry.role == registry.POLICY
    assert registry.REFERENCE in registry.policies(exact=True)
    for name in ("td3", "hindsight-bound"):
        entry = registry.study_entry(name)
        assert entry.role in (registry.TRAINER, registry.BOUND)
        assert entry.option_classes()  # documented options: the study spec keys


def _string_constants(path: Path) -> set[str]:
    """String literals in code (docstrings excluded)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


def test_no_module_outside_the_solvers_names_a_method():
    """Adding a method touches the registry only: the core, the experiments, the studies and
    the command lines never spell a method name."""
    names = {e.split(":")[0] for e in registry.available_methods()} | {"hindsight-bound"}
    offenders = {}
    for path in (ROOT / "dtasm_opt").rglob("*.py"):
        found = _string_constants(path) & names
        if found:
            offenders[str(path.relative_to(ROOT))] = sorted(found)
    assert offenders == {}


def test_step_record_columns_are_declared_once():
    """Rollout, training and study rows all start with the StepRecord columns."""
    from dtasm_opt.studies.cells import columns
    from dtasm_opt.studies.spec import parse

    spec = parse(
        {
            "study": {"name": "x", "methods": ["nearest", "td3"], "seeds": [1], "steps": 2},
            "method": {"td3": {"hidden": [4]}},
        }
    )
    cols = columns(spec)
    start = cols.index("method")
    assert cols[start : start + len(records.STEP_COLUMNS)] == records.STEP_COLUMNS
    assert set(records.TRAINING_COLUMNS) <= set(cols)
