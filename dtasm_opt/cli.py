"""Shared plumbing of the ``python -m dtasm_opt.X`` command-line interfaces.

Every CLI module has ``main(argv=None) -> int`` over a thin :class:`Parser` and calls library
functions. :func:`run` turns bad input (an :class:`~dtasm_opt.errors.InputError`, an argparse
usage error, an unreadable or unwritable path) into ONE line ``error: <message>`` on stderr and
exit status 2, never a traceback (docs/design.md §5). Machine-readable output goes to stdout or
a file, messages and progress to stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from collections.abc import Callable, Sequence

import numpy as np

from dtasm_opt.core.limits import (
    DEFAULT_CLOUD_SETS,
    DEFAULT_COLUMN_REACH,
    DEFAULT_COLUMN_ROUNDS,
    DEFAULT_FIXED_NODES,
    DEFAULT_NEIGHBOURHOOD_TRIES,
    DEFAULT_NODE_LIMIT,
    DEFAULT_OPEN_LOAD_TREE_ROUNDS,
    DEFAULT_ROUNDS_PER_TREE_NODE,
    DEFAULT_TREE_NODES,
    DEFAULT_TREE_REACH,
    DEFAULT_TREE_ROUNDS,
    MAX_CLOUD_SETS,
    MAX_COLUMN_REACH,
    MAX_COLUMN_ROUNDS,
    MAX_NEIGHBOURHOOD_TRIES,
    MAX_NODE_LIMIT,
    MAX_THREADS,
    MAX_TREE_NODES,
    MAX_TREE_REACH,
    MAX_TREE_ROUNDS,
)
from dtasm_opt.core.method import MILP_BACKENDS, SECOND_STAGES, MethodSettings
from dtasm_opt.errors import InputError

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT: an interruption is not bad input


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors raise :class:`InputError` instead of printing the
    usage block and exiting, so that :func:`run` reports them as one line like any bad input."""

    def error(self, message: str):  # raises, never returns
        raise InputError(f"{message} (see {self.prog} --help)")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)" after each flag's help, but only where it says something: not
    for None or an off switch, and not where the help already names its default (a setting
    whose default depends on the method, such as ``--node-limit``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action) or text


def make_parser(prog: str, description: str) -> Parser:
    return Parser(prog=prog, description=description, formatter_class=HelpFormatter)


def run(body: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Call ``body(argv)`` and map failures to exit codes: bad input -> 2 with one line on
    stderr; Ctrl-C -> 130 with one line; ``--help`` -> 0 (argparse's SystemExit)."""
    try:
        # Extreme but finite inputs may overflow float64 in the physics; numpy's warning would
        # add lines to stderr, and the outputs that cannot hold an infinity refuse it anyway.
        with np.errstate(over="ignore"):
            return body(argv)
    except InputError as exc:
        return fail(str(exc))
    except OSError as exc:
        # Unreadable or unwritable paths met outside files.read_json (an output folder
        # without write permission, an output path that is a directory, a full disk).
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # argparse's --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK


def fail(message: str) -> int:
    """Print ``error: message`` as a single line on stderr; return exit status 2."""
    line = " ".join(message.split())  # a path or an exception text may hold newlines
    print(f"error: {line}", file=sys.stderr)
    return EXIT_BAD_INPUT


# Checked argparse value types: they raise InputError naming the option, so a bad value
# ("nan", "-3", "x") gives one clear line.


def seed(text: str) -> int:
    """A seed: an integer >= 0 (numpy's SeedSequence refuses negative seeds)."""
    return _int(text, "seed", 0)


def count(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An integer >= ``minimum`` (and <= ``maximum``)."""

    def parse(text: str) -> int:
        value = _int(text, "value", minimum)
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r} is too large, at most {maximum:,}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def real(minimum: float | None = None, *, strict: bool = False) -> Callable[[str], float]:
    """A finite float, optionally ``>= minimum`` (``> minimum`` when ``strict``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is invalid, must be finite")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            op = ">" if strict else ">="
            raise argparse.ArgumentTypeError(f"{text!r} is invalid, must be {op} {minimum:g}")
        return value

    parse.__name__ = "number"
    return parse


def _int(text: str, what: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid, must be >= {minimum}")
    return value


def add_solver_options(p: argparse.ArgumentParser, *, time_limit_default: float | None) -> None:
    """The options every command that runs methods shares (:class:`MethodSettings`)."""
    p.add_argument("--seed", type=seed, default=0, help="seed of random methods and solvers")
    p.add_argument(
        "--time-limit",
        type=real(0.0, strict=True),
        default=time_limit_default,
        help="exact solvers: seconds per step (per stage); none: no limit",
    )
    p.add_argument(
        "--gap", type=real(0.0), default=0.0, help="exact solvers: relative gap to stop at"
    )
    p.add_argument(
        "--threads", type=count(1, MAX_THREADS), default=1, help="exact solvers: threads"
    )
    p.add_argument(
        "--second-stage",
        choices=SECOND_STAGES,
        default="migrations",
        help="exact solvers: tie-break among load-optimal solutions",
    )
    p.add_argument(
        "--stage2-time-limit",
        type=real(0.0, strict=True),
        default=None,
        help="exact solvers: seconds for the tie-break stage (default: --time-limit)",
    )
    p.add_argument(
        "--backend",
        choices=MILP_BACKENDS,
        default=None,
        help="milp and lagrangian: how HiGHS is fed (scaled: the direct matrix in MB and "
        "capacity units; lagrangian's default)",
    )
    add_work_limit_options(p)


# The MethodSettings fields that add_work_limit_options sets (one flag each, same name).
WORK_LIMITS = (
    "node_limit",
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
    "deterministic_limit",
)


def work_limits(args: argparse.Namespace) -> dict:
    """The work limits parsed by :func:`add_work_limit_options`, as MethodSettings keywords."""
    return {name: getattr(args, name) for name in WORK_LIMITS}


def add_work_limit_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The exact solvers' work limits (:class:`MethodSettings`' node_limit and
    deterministic_limit): a search stopped by one stops at the same point on every run."""
    # (flag, least, most, help): HiGHS's nodes, then the engine's own budgets in knapsack
    # rounds per step (0 turns a part off)
    parts = [
        ("--node-limit", 1, MAX_NODE_LIMIT, "milp and lagrangian: branch-and-bound nodes per "
         "stage, a work limit: the same answer on every run with --threads 1 (lagrangian's "
         f"default: {DEFAULT_NODE_LIMIT})"),
        *((flag, 0, most, f"lagrangian: knapsack rounds of the tie-break's {part} per step, a "
           f"work limit (0: no {part}; default: {default})")
          for flag, most, part, default in (
              ("--tree-rounds", MAX_TREE_ROUNDS, "tree search", DEFAULT_TREE_ROUNDS),
              ("--column-rounds", MAX_COLUMN_ROUNDS, "column generation", DEFAULT_COLUMN_ROUNDS),
          )),
        ("--tree-nodes", 0, MAX_TREE_NODES, "lagrangian: nodes of the tie-break's tree "
         "search per step, a work limit (0: no tree search; where the load stage is not proven "
         f"at most one per {DEFAULT_ROUNDS_PER_TREE_NODE} of --open-load-tree-rounds; "
         f"default: one per {DEFAULT_ROUNDS_PER_TREE_NODE} of its rounds, at least 5,000: "
         f"{DEFAULT_TREE_NODES:,} at {DEFAULT_TREE_ROUNDS:,} rounds)"),
        ("--open-load-tree-rounds", 0, MAX_TREE_ROUNDS, "lagrangian: the tree search's "
         "knapsack rounds on a step whose load stage is not proven (an overloaded step, where "
         "a proven tie-break does not prove the step), a work limit (at most --tree-rounds; "
         f"default: {DEFAULT_OPEN_LOAD_TREE_ROUNDS})"),
        ("--column-reach", 0, MAX_COLUMN_REACH, "lagrangian: column generation runs where the "
         "tie-break's bound is 1 to N migrations short, on a step whose load stage is proven "
         f"(elsewhere at most 2, the tree's reach; 0: none; default: {DEFAULT_COLUMN_REACH})"),
        ("--tree-reach", 0, MAX_TREE_REACH, "lagrangian: the tree search starts where the "
         "tie-break's bound is 1 to N migrations short, on a step whose load stage is proven "
         f"(elsewhere at most 2; 0: never; default: {DEFAULT_TREE_REACH})"),
        ("--fixed-nodes", 0, MAX_NODE_LIMIT, "lagrangian: HiGHS nodes on the problem that "
         "reduced-cost fixing leaves, where the tree stops with the tie-break's bound one "
         f"short, a work limit (0: no such search; default: {DEFAULT_FIXED_NODES})"),
        ("--neighbourhood-tries", 0, MAX_NEIGHBOURHOOD_TRIES, "lagrangian: neighbourhoods "
         "(two ESs' users re-placed) of the tie-break's search before HiGHS's stage 2 per "
         f"step, a work limit (0: no search; default: {DEFAULT_NEIGHBOURHOOD_TRIES})"),
        ("--overloaded-nodes", 0, MAX_NODE_LIMIT, "lagrangian: HiGHS nodes on a load stage "
         "that cannot serve everyone, a work limit (0: HiGHS's load stage is not run there, "
         "the engine's bound and plans decide; default: --node-limit)"),
        ("--cloud-sets", 0, MAX_CLOUD_SETS, "lagrangian: the most cloud sets lighter than an "
         "overloaded load stage's plan that it refutes one by one (each everyone-else-served "
         f"problem) to prove the plan, a work limit (0: none; default: {DEFAULT_CLOUD_SETS})"),
    ]  # fmt: skip
    for flag, least, most, text in parts:
        p.add_argument(flag, type=count(least, most), default=None, metavar="N", help=text)
    p.add_argument(
        "--deterministic-limit",
        type=real(0.0, strict=True),
        default=None,
        metavar="D",
        help="cpsat: CP-SAT deterministic time per solve, a work limit: the same answer on "
        "every run with --threads 1",
    )


def solver_settings(args: argparse.Namespace) -> MethodSettings:
    """MethodSettings from the options of :func:`add_solver_options`."""
    return MethodSettings(
        seed=args.seed,
        time_limit_s=args.time_limit,
        gap=args.gap,
        threads=args.threads,
        second_stage=args.second_stage,
        second_stage_time_limit_s=args.stage2_time_limit,
        backend=args.backend,
        **work_limits(args),
    )


def add_output_options(p: argparse.ArgumentParser, *, solver: bool = True) -> None:
    """The two output flags every command has: ``--quiet`` and (where solvers run)
    ``--solver-log``."""
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages on stderr")
    if solver:
        p.add_argument(
            "--solver-log", action="store_true", help="show the solvers' own output on stderr"
        )


def apply_output_options(args: argparse.Namespace) -> None:
    """Act on :func:`add_output_options`' flags (HiGHS is imported only when asked)."""
    if getattr(args, "solver_log", False):
        from dtasm_opt.solvers.exact.highs_runtime import set_solver_log

        set_solver_log(True)


def progress_bar(args: argparse.Namespace, unit: str) -> ProgressBar | None:
    """A progress bar unless ``--quiet`` or stderr is not a terminal (a log file gets none)."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None
    return ProgressBar(unit)


def say(args: argparse.Namespace, message: str) -> None:
    """A message on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def for_terminal(text: str) -> str:
    """JSON for stdout: as written when a program reads it, on one line when a person does
    (a solution's U-long arrays would fill the screen)."""
    if not sys.stdout.isatty():
        return text
    import json

    return json.dumps(json.loads(text), separators=(",", ":")) + "\n"


def mb(nbytes: float | None) -> str:
    """A load for people: MB of 2^20 bytes."""
    return "-" if nbytes is None else f"{nbytes / 2**20:.3f} MB"


class ProgressBar:
    """A tqdm bar on stderr (with rate and ETA), fed as ``bar(done, total)`` by a library's
    progress callback; ``note`` sets a short text after the counts."""

    def __init__(self, unit: str):
        self.unit = unit
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            # tqdm sizes the bar from the terminal itself; one that reports 0 x 0 (some ptys,
            # editors' shells) gets no bar at all (it hides bars below the screen's 0 rows).
            # There the size comes from $COLUMNS/$LINES, else 80 x 24.
            try:
                size = os.get_terminal_size(sys.stderr.fileno())
            except (OSError, ValueError, AttributeError):
                size = os.terminal_size((0, 0))
            sized = size.columns > 0 and size.lines > 0
            fallback = shutil.get_terminal_size((80, 24))
            self._bar = tqdm(
                total=total,
                initial=done,
                unit=self.unit,
                file=sys.stderr,
                dynamic_ncols=sized,
                ncols=None if sized else fallback.columns,
                nrows=None if sized else fallback.lines,
            )
            return
        if total != self._bar.total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
