"""Study specifications: a small TOML file that declares a study (STYLE: "Studies and results").

    [study]
    name = "fig6_users"          # the default output folder is runs/<name>/
    kind = "rollout"             # "rollout" (alias "train") or "solve"
    methods = ["nearest", "danearest", "milp", "td3"]
    seeds = [1, 2, 3]            # seed s: stream seed s, methods' seed s (paired comparisons)
    steps = 2500                 # steps per cell (a method's [method.X] steps overrides it)
    last = 500                   # summary.md averages each cell's last `last` steps
    stream_steps = 500           # optional: stream length T (default: steps); past T the
                                 # stream restarts from step 0 and the initial servers
    per_step_optimum = false     # also solve each step exactly from the method's own state
    optimum_time_limit_s = 10.0  # per-step limit of that solve (default: none)
    optimum_node_limit = 200     # its work limit: HiGHS nodes (default: none); repeats exactly
    stage2_columns = true        # exact methods' rows add their tie-break's status, value and
                                 # proven bound (records.STAGE2_COLUMNS; default: false)

    [scenario]                   # dtasm_opt.core.generator.Scenario; defaults: the paper's
    users = 200
    servers = 8
    xi = 1.2
    mobility = "iid"             # also: apps, stay_prob, gamma_shape

    [sweep]                      # optional, one axis
    axis = "users"               # see AXES
    values = [120, 160, 200, 240, 280]

    [method.milp]                # optional per-method options (see method_keys)
    node_limit = 50              # a work limit: the same rows on every run (threads = 1)
    time_limit_s = 30.0          # a wall-clock safety net; a step it stops is "time_limit"

    [method.milp-pyomo]          # a label of its own: the same method with other options
    method = "milp"
    backend = "pyomo"

Methods are names of the registry (:mod:`dtasm_opt.solvers.registry`), by role: a policy is
rolled out over the stream; a trainer (``td3``) is trained online in the cell, which records
its training steps as the learning curve (and, with ``eval_steps``, a greedy rollout of the
trained agent as method ``<label>-greedy``); a bound (``hindsight-bound``) is not a policy:
its cell computes a certified lower bound on the total cloud load of ANY policy over the
stream's first ``steps`` steps, in windows (one row per window; only window sums are bounds).
A method's keys are the common ones, the shared settings its registry entry reads, and the
fields of its documented option classes (for ``td3``: TD3Config and TrainOptions).
Kind "solve" solves single instances (step 0 of each seed's stream) instead of rollouts.
Every check raises :class:`~dtasm_opt.errors.InputError` naming the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from importlib.resources.abc import Traversable
from pathlib import Path

from dtasm_opt.core.limits import MAX_CELLS, MAX_NODE_LIMIT, MAX_STEPS, check_at_most
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.core.options import check_value, option_specs
from dtasm_opt.core.stream import check_stream_size
from dtasm_opt.errors import InputError
from dtasm_opt.solvers import registry

KINDS = ("rollout", "train", "solve")
SCENARIO_KEYS = {
    "users": "int",
    "servers": "int",
    "apps": "int",
    "xi": "float",
    "mobility": "str",
    "stay_prob": "float",
    "gamma_shape": "float",
}
# Sweep axes: scenario fields, "size" ([users, servers] pairs), "discount" (TD3's gamma).
AXES = {**SCENARIO_KEYS, "size": "size", "discount": "float"}
STUDY_KEYS = {
    "name",
    "kind",
    "description",
    "methods",
    "seeds",
    "steps",
    "last",
    "stream_steps",
    "per_step_optimum",
    "optimum_time_limit_s",
    "optimum_node_limit",
    "stage2_columns",
}
COMMON_KEYS = {
    "method": "str",
    "steps": "int",
    "time_limit_s": "float",
    "gap": "float",
    "threads": "int",
}
TRAINER_KEYS = {"eval_steps": "int"}  # after training: a greedy rollout of this many steps
SET_BY_CELL = ("seed",)  # option fields the cell sets itself (from the cell's seed)
POSITIVE_KEYS = (
    "steps",
    "threads",
    "time_limit_s",
    "second_stage_time_limit_s",
    "node_limit",
    "deterministic_limit",
)
# A method's wall-clock limits per stage: safety nets where its searches stop at work limits.
# A row that none of them stopped is the row a larger one gives (``study --reuse``).
SAFETY_NETS = ("time_limit_s", "second_stage_time_limit_s")
DISCOUNT_OPTION = "gamma"  # the "discount" sweep axis sets this option of each method
# A method label is a CSV cell and part of a file name: no spaces, commas or control characters.
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:/-]{0,199}")
QUICK_STEPS, QUICK_SEEDS, QUICK_TIME_LIMIT_S = 8, 2, 0.5


@dataclass(frozen=True)
class MethodSpec:
    """One method label of a study: the method it runs and its options."""

    label: str  # the value of the `method` column
    name: str  # registry name, or "td3" (trained online)
    options: dict = field(default_factory=dict)  # validated [method.<label>] keys

    def steps(self, default: int) -> int:
        return int(self.options.get("steps", default))


@dataclass(frozen=True)
class Cell:
    """One unit of work: (method label, seed, sweep value). ``value`` is None without sweep."""

    method: str
    seed: int
    value: object = None

    def key(self, axis: str | None) -> str:
        where = "" if axis is None else f"|{axis}={format_value(self.value)}"
        return f"{self.method}|seed={self.seed}{where}"


# Spec fields newer than the shipped studies
ADDED_LATER = ("optimum_node_limit", "stage2_columns")


@dataclass(frozen=True)
class Spec:
    """A parsed, validated study spec (plain data: picklable for process pools and Ray)."""

    name: str
    kind: str
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...]
    steps: int
    last: int
    scenario: dict
    axis: str | None = None
    values: tuple = ()
    stream_steps: int | None = None
    per_step_optimum: bool = False
    optimum_time_limit_s: float | None = None
    optimum_node_limit: int | None = None
    stage2_columns: bool | None = None  # None: off (and absent from the fingerprints)
    description: str = ""
    text: str = ""  # the spec file's text (for the manifest)
    quick: bool = False

    def cells(self) -> list[Cell]:
        """Every cell in the study's fixed order: sweep value, then seed, then method."""
        values = self.values if self.axis else (None,)
        return [Cell(m.label, s, v) for v in values for s in self.seeds for m in self.methods]

    def method(self, label: str) -> MethodSpec:
        return next(m for m in self.methods if m.label == label)

    def fingerprint(self) -> str:
        """A digest of everything that determines the rows (checked when resuming)."""
        return _digest(self._identity(drop=("text", "description")))

    def cell_fingerprint(self, cell: Cell) -> str:
        """A digest of everything that determines ``cell``'s rows: the spec without the other
        methods, this cell's method and options, and the cell. Two specs that differ only in
        another method's table give this cell the same fingerprint (``study --reuse``)."""
        doc = self._identity(drop=("text", "description", "methods", "values", "seeds"))
        if not fills_stage2(self.method(cell.method)):
            doc.pop("stage2_columns", None)  # the columns stay empty on its rows
        doc["method"] = asdict(self.method(cell.method))
        doc["cell"] = cell.key(self.axis)
        if revision := self.revision(cell):  # absent at 0: older folders keep their digests
            doc["revision"] = revision
        return _digest(doc)

    def revision(self, cell: Cell) -> int:
        """The revision of ``cell``'s method (``registry.MethodInfo.revision``): a cell
        computed at another one is never reused nor resumed."""
        try:
            return registry.info(self.method(cell.method).name).revision
        except InputError:  # "td3" trained online: a trainer, not in the policies' table
            return 0

    def made_here(self, cell: Cell, entry: dict) -> bool:
        """Whether ``cell``'s ledger line ``entry`` was computed at this code's revision of
        its method (a line without one: revision 0)."""
        return entry.get("revision", 0) == self.revision(cell)

    def run_identity(self, cell: Cell, safety_nets: bool = True) -> str | None:
        """A digest of what the first steps of ``cell``'s rollout depend on, whatever study
        it belongs to: its scenario with the sweep value applied, its seed, its method's name,
        label and options (all but the step count) and the per-step settings. Two cells with
        the same identity give the same rows for the steps both ran (``study --reuse`` takes
        the first steps of a longer cell, or of another study's). Only exact policies have
        one: they decide each step from its state alone, so a step's row cannot depend on how
        many steps follow it; None for every other cell. Without ``safety_nets`` the
        method's wall-clock limits (``SAFETY_NETS``) are left out: two cells that differ only
        there give the same rows wherever neither limit stopped a step
        (:meth:`safety_nets_s`)."""
        m = self.method(cell.method)
        if self.kind == "solve" or not fills_stage2(m):
            return None
        drop = {"steps"} if safety_nets else {"steps", *SAFETY_NETS}
        doc = {
            "scenario": asdict(scenario_of(self, cell)),
            "seed": cell.seed,
            "method": [m.label, m.name, {k: v for k, v in m.options.items() if k not in drop}],
            "optimum": [self.per_step_optimum, self.optimum_time_limit_s, self.optimum_node_limit],
            "stage2_columns": self.stage2_columns is True,
            "discount": cell.value if self.axis == "discount" else None,
        }
        return _digest(doc)

    def safety_nets_s(self, cell: Cell) -> tuple[float | None, float | None]:
        """``cell``'s method's wall-clock limits in seconds, (stage 1, the tie-break), as its
        steps run them (the tie-break's is stage 1's unless set; None: not set, which the
        method reads as its own default)."""
        opts = self.method(cell.method).options
        first = opts.get("time_limit_s")
        second = opts.get("second_stage_time_limit_s")
        return first, first if second is None else second

    def stream_steps_of(self) -> int:
        """The length of each cell's stream (past it a rollout starts the stream again)."""
        return self.stream_steps or self.steps

    def _identity(self, drop: tuple[str, ...]) -> dict:
        doc = {k: v for k, v in asdict(self).items() if k not in drop}
        for key in ADDED_LATER:  # at its default a newer field changes no row: old runs resume
            if doc[key] is None:
                doc.pop(key)
        return doc

    def config(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "text"}


def fills_stage2(m: MethodSpec) -> bool:
    """Whether ``m``'s rows fill ``stage2_columns`` (an exact policy: it has a tie-break)."""
    entry = registry.study_entry(m.name)
    return entry.role == registry.POLICY and entry.exact


def _digest(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def format_value(value: object) -> str:
    """A sweep value as it appears in the CSV: 1.2, 200, "50x4" for a size."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def load(path: str | Path | Traversable, *, quick: bool = False) -> Spec:
    """Read and validate the spec file ``path`` (a shipped spec: a package resource;
    ``quick``: see :func:`shrink`)."""
    p = Path(path) if isinstance(path, str) else path
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: no such spec file") from None
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a UTF-8 text file") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: not valid TOML ({exc})") from None
    try:
        spec = parse(doc, text)
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from None
    return shrink(spec) if quick else spec


def parse(doc: dict, text: str = "") -> Spec:
    """Validate a spec already parsed from TOML."""
    _known(doc, {"study", "scenario", "sweep", "method"}, "")
    study = _table(doc, "study", required=True)
    _known(study, STUDY_KEYS, "study.")
    name = _value(study, "name", "str", "study.")
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise InputError(f"study.name: {name!r} is invalid, use a plain folder name")
    kind = _value(study, "kind", "str", "study.", default="rollout")
    if kind not in KINDS:
        raise InputError(f"study.kind: {kind!r} is unknown, use one of {KINDS}")
    kind = "rollout" if kind == "train" else kind  # "train": a rollout study with td3 in it

    seeds = _list(study, "seeds", "int", "study.")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise InputError("study.seeds: seeds must be distinct integers >= 0")
    steps = 1 if kind == "solve" else _value(study, "steps", "int", "study.")
    if steps < 1:
        raise InputError(f"study.steps: {steps} is invalid, must be >= 1")
    check_at_most(steps, MAX_STEPS, "study.steps")
    last = _value(study, "last", "int", "study.", default=steps)
    if last < 1:
        raise InputError(f"study.last: {last} is invalid, must be >= 1")
    stream_steps = _value(study, "stream_steps", "int", "study.", default=None)
    if stream_steps is not None and stream_steps < 1:
        raise InputError(f"study.stream_steps: {stream_steps} is invalid, must be >= 1")
    if stream_steps is not None:
        check_at_most(stream_steps, MAX_STEPS, "study.stream_steps")
    optimum = _value(study, "per_step_optimum", "bool", "study.", default=False)
    opt_limit = _value(study, "optimum_time_limit_s", "float", "study.", default=None)
    if opt_limit is not None and not opt_limit > 0:
        raise InputError(f"study.optimum_time_limit_s: {opt_limit} is invalid, must be > 0")
    stage2 = _value(study, "stage2_columns", "bool", "study.", default=False)
    if stage2 and kind == "solve":
        raise InputError("study.stage2_columns: only for rollouts (a solve study has stage2_s)")
    opt_nodes = _value(study, "optimum_node_limit", "int", "study.", default=None)
    if opt_nodes is not None and not 1 <= opt_nodes <= MAX_NODE_LIMIT:
        raise InputError(
            f"study.optimum_node_limit: {opt_nodes} is invalid, must be in 1..{MAX_NODE_LIMIT}"
        )

    scenario_doc = _table(doc, "scenario")
    _known(scenario_doc, set(SCENARIO_KEYS), "scenario.")
    scenario = {
        k: _value(scenario_doc, k, t, "scenario.")
        for k, t in SCENARIO_KEYS.items()
        if k in scenario_doc
    }
    methods = _methods(study, _table(doc, "method"), kind)
    axis, values = _sweep(_table(doc, "sweep"), methods)
    spec = Spec(
        name=name,
        kind=kind,
        methods=methods,
        seeds=tuple(seeds),
        steps=steps,
        last=last,
        scenario=scenario,
        axis=axis,
        values=values,
        stream_steps=stream_steps,
        per_step_optimum=optimum,
        optimum_time_limit_s=opt_limit,
        optimum_node_limit=opt_nodes,
        stage2_columns=True if stage2 else None,
        description=_value(study, "description", "str", "study.", default=""),
        text=text,
    )
    check_at_most(len(spec.cells()), MAX_CELLS, "study: cells (methods x seeds x sweep values)")
    for value in values or (None,):
        scenario = scenario_of(spec, Cell("", 0, value))  # the generator's checks, by field
        where = f"sweep.values ({axis}={format_value(value)})" if axis else "scenario"
        try:
            check_stream_size(1 if kind == "solve" else stream_steps or steps, scenario.users)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    return spec


def scenario_of(spec: Spec, cell: Cell):
    """The generator Scenario of ``cell`` (the sweep value applied)."""
    from dtasm_opt.core.generator import Scenario

    kw = dict(spec.scenario)
    if spec.axis == "size":
        kw["users"], kw["servers"] = cell.value  # type: ignore[misc]  # a (users, servers) pair
    elif spec.axis in SCENARIO_KEYS:
        kw[spec.axis] = cell.value
    if "xi" in kw:
        kw["xi_s"] = kw.pop("xi")
    where = f"sweep.values ({spec.axis}={format_value(cell.value)})" if spec.axis else "scenario"
    try:
        return Scenario(**kw)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def shrink(spec: Spec) -> Spec:
    """``--quick``: a smoke test of the same cells with few steps and seeds, capped solver
    time limits and TD3 learning from step 2 (so an update runs); every sweep value is kept."""
    steps = min(spec.steps, QUICK_STEPS)
    methods = []
    for m in spec.methods:
        opts = dict(m.options)
        for key in ("steps", "eval_steps", "warm_start_steps"):
            if key in opts:
                opts[key] = min(opts[key], QUICK_STEPS if key != "warm_start_steps" else 3)
        for key in ("time_limit_s", "second_stage_time_limit_s", "teacher_time_limit_s"):
            opts[key] = min(opts.get(key, math.inf), QUICK_TIME_LIMIT_S)
        keys = method_keys(registry.study_entry(m.name))
        if "learning_starts" in keys:  # a learner: make an update happen in a short run
            opts["learning_starts"] = min(opts.get("learning_starts", 50), 2)
        if "window" in keys:  # a bound: several windows in a short run
            opts["window"] = min(opts.get("window", QUICK_STEPS), 4)
        opts = {k: v for k, v in opts.items() if k in keys}
        methods.append(replace(m, options=opts))
    limit = min(spec.optimum_time_limit_s or math.inf, QUICK_TIME_LIMIT_S)
    return replace(
        spec,
        methods=tuple(methods),
        seeds=spec.seeds[:QUICK_SEEDS],
        steps=steps,
        last=min(spec.last, max(1, steps // 2)),
        stream_steps=None if spec.stream_steps is None else min(spec.stream_steps, steps),
        optimum_time_limit_s=limit,
        quick=True,
    )


def method_keys(entry: registry.MethodInfo) -> dict[str, str]:
    """The keys a ``[method.<label>]`` table may hold for ``entry``, with their kinds."""
    keys = dict(COMMON_KEYS)
    settings = option_specs(MethodSettings)
    for name in entry.settings:
        keys[name] = settings[name].kind
    for cls in entry.option_classes():
        for spec in option_specs(cls).values():
            if spec.name not in SET_BY_CELL:
                keys[spec.name] = spec.kind
    if entry.role == registry.TRAINER:
        keys.update(TRAINER_KEYS)
    return keys


def _methods(study: dict, tables: dict, kind: str) -> tuple[MethodSpec, ...]:
    labels = _list(study, "methods", "str", "study.")
    if len(set(labels)) != len(labels):
        raise InputError("study.methods: a method is named twice")
    for label in tables:
        if label not in labels:
            raise InputError(f"method.{label}: not in study.methods")
    out = []
    for label in labels:
        if not LABEL.fullmatch(label):
            raise InputError(
                f"study.methods: {label!r} is not a plain label (letters, digits, . _ - + : /)"
            )
        opts_doc = _table(tables, label, where="method.")
        name = _value(opts_doc, "method", "str", f"method.{label}.", default=label)
        try:
            entry = registry.study_entry(name)
            registry.factory(entry)  # a missing backend is refused before any work
        except InputError as exc:
            raise InputError(f"study.methods: {exc}") from None
        allowed = method_keys(entry)
        _known(opts_doc, set(allowed), f"method.{label}.")
        opts = {
            k: _value(opts_doc, k, t, f"method.{label}.")
            for k, t in allowed.items()
            if k in opts_doc and k != "method"
        }
        for k, v in opts.items():
            positive = k in POSITIVE_KEYS
            if isinstance(v, int | float) and not isinstance(v, bool):
                if v <= 0 if positive else v < 0:
                    sign = ">" if positive else ">="
                    raise InputError(f"method.{label}.{k}: {v} is invalid, must be {sign} 0")
        for k in ("steps", "eval_steps", "warm_start_steps"):
            if k in opts:
                check_at_most(opts[k], MAX_STEPS, f"method.{label}.{k}")
        if entry.role != registry.POLICY and kind == "solve":
            raise InputError(f"study.methods: {label!r} runs over steps; not in a 'solve' study")
        out.append(MethodSpec(label, name, opts))
    return tuple(out)


def _sweep(sweep: dict, methods: tuple[MethodSpec, ...]) -> tuple[str | None, tuple]:
    if not sweep:
        return None, ()
    _known(sweep, {"axis", "values"}, "sweep.")
    axis = _value(sweep, "axis", "str", "sweep.")
    if axis not in AXES:
        raise InputError(f"sweep.axis: {axis!r} is unknown, use one of {sorted(AXES)}")
    kind = AXES[axis]
    values = _list(sweep, "values", "ints" if kind == "size" else kind, "sweep.")
    if kind == "size" and any(len(v) != 2 or min(v) < 1 for v in values):
        raise InputError("sweep.values: a size is [users, servers], both >= 1")
    values = [tuple(v) for v in values] if kind == "size" else values
    if len(set(values)) != len(values):
        raise InputError("sweep.values: a value is given twice")
    if axis == "discount":
        others = [
            m.label
            for m in methods
            if DISCOUNT_OPTION not in method_keys(registry.study_entry(m.name))
        ]
        if others:
            raise InputError(
                f"sweep.axis: 'discount' is TD3's gamma; methods {others} do not "
                "use it (list only td3 methods)"
            )
        if any(not 0 <= v < 1 for v in values):
            raise InputError("sweep.values: a discount factor must be in [0, 1)")
    return axis, tuple(values)


# TOML readers that name the field they refuse.


def _table(doc: dict, key: str, *, required: bool = False, where: str = "") -> dict:
    if key not in doc:
        if required:
            raise InputError(f"{where}{key}: missing table [{where}{key}]")
        return {}
    if not isinstance(doc[key], dict):
        raise InputError(f"{where}{key}: expected a table")
    return doc[key]


def _known(doc: dict, keys: set[str], where: str) -> None:
    for k in doc:
        if k not in keys:
            raise InputError(f"{where}{k}: unknown field; known: {', '.join(sorted(keys))}")


_MISSING = object()


def _value(doc: dict, key: str, kind: str, where: str, default: object = _MISSING):
    if key not in doc:
        if default is _MISSING:
            raise InputError(f"{where}{key}: missing")
        return default
    return check_value(doc[key], kind, f"{where}{key}")


def _list(doc: dict, key: str, kind: str, where: str) -> list:
    if key not in doc:
        raise InputError(f"{where}{key}: missing")
    v = doc[key]
    if not isinstance(v, list) or not v:
        raise InputError(f"{where}{key}: expected a non-empty list")
    return [check_value(x, kind, f"{where}{key}[{i}]") for i, x in enumerate(v)]
