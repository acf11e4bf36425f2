"""The registry of method names: the one place that names a method (docs/design.md §6, §7).

Every entry says what the method is (its role, whether it is exact, the paper's label), which
of the shared :class:`~dtasm_opt.core.method.MethodSettings` it reads, which extra options a
study spec may give it (a dataclass declared next to the method) and which package its
results depend on. Factories are ``"module:callable"`` strings imported on first use, so a
missing optional dependency only affects the methods that need it, with a message that says
how to install it, and choosing ``nearest`` loads no solver at all.

Adding a baseline: one file in ``solvers/heuristics/`` with a factory
``make(name, settings) -> Method``, and one :class:`MethodInfo` line below.

Roles, and what their factory is:

- ``policy``: decides every step (``decide(instance, step) -> Decision``); usable in
  ``solve``, ``rollout`` and studies. Factory: ``make(name, settings) -> Method``.
- ``trainer``: a learning agent trained online inside a study cell (its records are the
  learning curve); its saved policy is a ``policy`` entry of its own (``td3:PATH``). Factory:
  ``make(stream, *options) -> Trainer`` with ``run(steps)`` yielding step records and
  ``policy()`` giving the trained greedy policy.
- ``bound``: not a method but a certified lower bound on any policy's cloud load over a
  stream, computed in a study cell beside the methods. Factory: ``make(name, settings,
  *options)`` with ``window(steps)`` and ``windows(stream, steps)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from dtasm_opt.core.method import Method, MethodSettings
from dtasm_opt.errors import InputError

POLICY, TRAINER, BOUND = "policy", "trainer", "bound"
EXACT_SETTINGS = ("time_limit_s", "gap", "threads", "second_stage", "second_stage_time_limit_s")
MILP_SETTINGS = (*EXACT_SETTINGS, "backend", "node_limit")
LAGRANGIAN_SETTINGS = (
    *MILP_SETTINGS,
    "tree_rounds",
    "tree_nodes",
    "open_load_tree_rounds",
    "column_rounds",
    "column_reach",
    "tree_reach",
    "fixed_nodes",
    "neighbourhood_tries",
    "overloaded_nodes",
    "cloud_sets",
)
CPSAT_SETTINGS = (*EXACT_SETTINGS, "deterministic_limit")


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about one method name."""

    name: str  # the name used on command lines and in specs ("td3" for "td3:PATH")
    factory: str  # "module:callable"; callable(name, settings) -> Method (policies)
    label: str  # the paper's name, for tables and plots
    role: str = POLICY
    exact: bool = False  # proves per-step optima and bounds (a reference method)
    settings: tuple[str, ...] = ()  # the MethodSettings fields it reads besides seed
    options: tuple[str, ...] = ()  # "module:Dataclass" of each group of documented options
    # a study spec may set (each built from the spec's keys that its fields name)
    package: str | None = None  # the solver package its reference values depend on
    prefix: bool = False  # named "NAME:ARGUMENT"
    argument: str = "PATH"  # what the argument of a prefixed name is, for messages
    # How the method looks in every figure of every study (matplotlib colour and marker).
    colour: str = "#333333"
    marker: str = "o"
    # Raised by a change that moves the method's decisions (not by a faster way to the same
    # ones): a study never reuses, nor resumes, a cell computed at another revision.
    revision: int = 0

    def option_classes(self) -> tuple[type, ...]:
        return tuple(_load(target, self.name) for target in self.options)


_HEURISTICS = "dtasm_opt.solvers.heuristics"
_ENTRIES = (
    MethodInfo(
        "womig-stable",
        f"{_HEURISTICS}.womig:make_stable",
        "WoMig-stable",
        colour="#8c564b",
        marker="v",
    ),
    MethodInfo(
        "womig-dynamic",
        f"{_HEURISTICS}.womig:make_dynamic",
        "WoMig-dynamic",
        colour="#e377c2",
        marker="^",
    ),
    MethodInfo(
        "random", f"{_HEURISTICS}.random_policy:make", "Random", colour="#7f7f7f", marker="x"
    ),
    MethodInfo(
        "nearest", f"{_HEURISTICS}.nearest:make_nearest", "Nearest", colour="#ff7f0e", marker="s"
    ),
    MethodInfo(
        "danearest",
        f"{_HEURISTICS}.nearest:make_danearest",
        "DANearest",
        colour="#2ca02c",
        marker="D",
    ),
    MethodInfo(
        "milp",
        "dtasm_opt.solvers.exact.milp:make_milp",
        "MILP-greedy",
        colour="#d62728",
        marker="*",
        exact=True,
        settings=MILP_SETTINGS,
        package="highspy",
    ),
    MethodInfo(
        "cpsat",
        "dtasm_opt.solvers.exact.cpsat:make_cpsat",
        "CP-SAT",
        colour="#9467bd",
        marker="P",
        exact=True,
        settings=CPSAT_SETTINGS,
        package="ortools",
    ),
    MethodInfo(
        "lagrangian",
        "dtasm_opt.solvers.exact.engine:make_lagrangian",
        "MILP-greedy (engine)",  # certified only where its bound proves a step
        colour="#800000",
        marker="X",
        exact=True,
        settings=LAGRANGIAN_SETTINGS,
        package="highspy",
        revision=1,  # 1: the same decisions on every x86-64 CPU (docs/design.md, "Across machines")
    ),
    MethodInfo(
        "td3",
        "dtasm_opt.solvers.td3.policy:make_td3",
        "TD3",
        colour="#1f77b4",
        marker="o",
        settings=("threads",),
        prefix=True,
        package="torch",
    ),
    MethodInfo(
        "py",
        "dtasm_opt.solvers.external.python_policy:make_py",
        "Python policy",
        colour="#bcbd22",
        marker="p",
        settings=("seed",),
        prefix=True,
        argument="MODULE:FACTORY",
    ),
    MethodInfo(
        "sb3",
        "dtasm_opt.solvers.external.sb3_policy:make_sb3",
        "Stable-Baselines3",
        colour="#17becf",
        marker="h",
        settings=("threads",),
        prefix=True,
        argument="PATH.zip",
        package="stable-baselines3",
    ),
    MethodInfo(
        "td3",
        "dtasm_opt.solvers.td3.training:make_trainer",
        "TD3",
        colour="#1f77b4",
        marker="o",
        role=TRAINER,
        settings=("threads",),
        options=(
            "dtasm_opt.solvers.td3.config:TD3Config",
            "dtasm_opt.solvers.td3.config:TrainOptions",
        ),
        package="torch",
    ),
    MethodInfo(
        "hindsight-bound",
        "dtasm_opt.solvers.exact.hindsight_bound:make_bound",
        "hindsight bound",
        colour="#000000",
        marker="o",
        role=BOUND,
        exact=True,
        settings=("time_limit_s", "threads"),
        options=("dtasm_opt.solvers.exact.hindsight_bound:HindsightOptions",),
        package="highspy",
    ),
)
# The exact per-step reference: the default of `solve`, the method studies compare against
# ("- milp MB") and the solver of each step's optimum in studies and of benchmark sets.
REFERENCE = "milp"

_BY_NAME = {e.name: e for e in _ENTRIES if not e.prefix and e.role != TRAINER}
_PREFIXED = {e.name: e for e in _ENTRIES if e.prefix}
_TRAINERS = {e.name: e for e in _ENTRIES if e.role == TRAINER}
_INSTALL_HINT = {
    "torch": "pip install 'torch==2.13.0'",
    "pyomo": "pip install pyomo highspy",
    "highspy": "pip install highspy",
    "ortools": "pip install ortools",
}


def register(info: MethodInfo) -> None:
    """Add a method at run time (an entry of your own package)."""
    table = _PREFIXED if info.prefix else _TRAINERS if info.role == TRAINER else _BY_NAME
    table[info.name] = info


def info(name: str) -> MethodInfo:
    """The entry of a policy or bound name (``td3:PATH`` matches the ``td3`` prefix entry)."""
    entry = _BY_NAME.get(name)
    if entry is None and ":" in name:
        entry = _PREFIXED.get(name.split(":", 1)[0])
    if entry is None:
        if name in _PREFIXED:
            raise InputError(f"method {name!r}: give it as {name}:{_PREFIXED[name].argument}")
        raise InputError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
    return entry


def study_entry(name: str) -> MethodInfo:
    """The entry of a name as a study spec uses it: a trainer ("td3": trained in the cell),
    a bound or a policy."""
    return _TRAINERS.get(name) or info(name)


def available_methods() -> list[str]:
    """The policy names, in registry order (prefixed ones as NAME:PATH)."""
    plain = [e.name for e in _BY_NAME.values() if e.role == POLICY]
    return plain + [f"{e.name}:{e.argument}" for e in _PREFIXED.values()]


def policies(*, exact: bool | None = None) -> list[str]:
    """Plain (unprefixed) policy names, optionally only the exact or only the other ones."""
    return [
        e.name
        for e in _BY_NAME.values()
        if e.role == POLICY and (exact is None or e.exact == exact)
    ]


def label(name: str) -> str:
    """The paper's name of a method (its registry name when unknown)."""
    try:
        return study_entry(name).label
    except InputError:
        return name


def look(name: str) -> tuple[str, str]:
    """(colour, marker) of a method in figures: the same in every figure of every study."""
    entry = _TRAINERS.get(name) or _BY_NAME.get(name) or _PREFIXED.get(name.split(":", 1)[0])
    if entry is None:
        return MethodInfo.colour, MethodInfo.marker
    return entry.colour, entry.marker


def _load(target: str, name: str):
    module, attr = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        hint = _INSTALL_HINT.get((exc.name or "").split(".")[0])
        if hint is None:
            raise
        raise InputError(f"method {name!r} needs {exc.name}: {hint}") from None
    return getattr(mod, attr)


def factory(entry: MethodInfo) -> Callable:
    return _load(entry.factory, entry.name)


def make_method(name: str, settings: MethodSettings | None = None) -> Method:
    """Build the policy called ``name`` (see :func:`available_methods`)."""
    entry = info(name)
    if entry.role != POLICY:
        raise InputError(f"method {name!r} is a {entry.role}, not a policy")
    return factory(entry)(name, settings or MethodSettings())


def parse_methods(text: str) -> list[str]:
    """A comma-separated list of policy names, each checked (and its backend importable)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--methods: no method named")
    if len(set(names)) != len(names):
        raise InputError("--methods: a method is named twice")
    for n in names:
        entry = info(n)
        if entry.role != POLICY:
            raise InputError(f"method {n!r} is a {entry.role}, not a policy")
        factory(entry)
    return names
