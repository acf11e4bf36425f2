"""``python -m dtasm_opt.solve``: solve one instance with one method; print its solution.

    python -m dtasm_opt.solve inst.json --method nearest
    python -m dtasm_opt.solve stream.json --step 0 --method milp --time-limit 20 --out sol.json

The ``dtasm-solution/1`` JSON goes to stdout (or ``--out``), a short summary to stderr. The
reported figures are always the simulator's evaluation of the method's action.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dtasm_opt import cli
from dtasm_opt.core import files
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.solution import Solution, judge
from dtasm_opt.core.stream import Stream
from dtasm_opt.core.units import BYTES_PER_MB
from dtasm_opt.errors import InputError
from dtasm_opt.solvers.registry import REFERENCE, available_methods, make_method

PROG = "python -m dtasm_opt.solve"
DEFAULT_METHOD = REFERENCE


def build_parser() -> cli.Parser:
    p = cli.make_parser(PROG, "Solve one DTASM instance with one method.")
    p.add_argument("instance", metavar="INSTANCE", help="dtasm-instance/1 file (.json[.gz])")
    p.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        help=f"one of: {', '.join(available_methods())}",
    )
    cli.add_solver_options(p, time_limit_default=None)
    p.add_argument(
        "--step",
        type=cli.count(0),
        default=None,
        help="for a dtasm-stream/1 file: the step to solve (only 0: the servers before a "
        "later step depend on the decisions taken before it)",
    )
    p.add_argument("--out", metavar="PATH", default=None, help="write the JSON here")
    p.add_argument(
        "--write-model",
        metavar="PATH",
        default=None,
        help="also write the step's MILP (C1-C4, stage 1) as .lp or .mps",
    )
    cli.add_output_options(p)
    return p


def load_instance(path: str, step: int | None) -> Instance:
    """The instance in ``path``; for a stream file, its step ``step`` (only 0 is defined)."""
    doc = files.read_instance_or_stream(path)
    if isinstance(doc, Stream):
        if step is None:
            raise InputError(
                f"{path}: is a stream (dtasm-stream/1), not an instance; pass --step 0 to "
                "solve its first step"
            )
        if step != 0:
            raise InputError(
                f"--step {step}: only step 0 of a stream is an instance (the servers before a "
                "later step depend on the decisions taken before it)"
            )
        return doc.instance(0)
    if step is not None:
        raise InputError(f"--step: {path} is an instance, not a stream; drop --step")
    return doc


def render(sol: Solution, source: str) -> str:
    """The solution's JSON text; refuses results that JSON cannot hold (NaN, infinity)."""
    try:
        return files.dumps(sol.to_dict())
    except ValueError:
        # Finite but extreme inputs (a bandwidth of 1e-320, volumes of 1e308) can overflow
        # float64 in eqs. (3)-(12): such an instance is outside any meaningful range.
        raise InputError(
            f"{source}: a result is not finite (values overflow float64); check the "
            "instance's magnitudes"
        ) from None


def summary(sol: Solution, inst: Instance) -> str:
    """A few human-readable lines about ``sol`` (for stderr)."""
    m = sol.metrics
    lines = [
        f"method {sol.method}: {sol.status} in {sol.solve_time_s:.3f} s",
        f"cloud load {sol.cloud_load_bytes / BYTES_PER_MB:.3f} MB",
    ]
    if sol.bound_bytes is not None:
        lines[-1] += f" (bound {sol.bound_bytes / BYTES_PER_MB:.3f} MB, gap {sol.gap:.2e})"
    lines.append(
        f"migrated {m['migrated']} (mean downtime {m['mean_downtime_s'] * 1e3:.1f} ms), "
        f"failed {m['migration_failed']}, rejected {m['rejected']}, "
        f"on edge {m['users_on_edge']} of {inst.n_users}"
    )
    return "\n".join(lines)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    settings = cli.solver_settings(args)
    cli.apply_output_options(args)
    method = make_method(args.method, settings)  # an unknown name is refused before reading
    for path in (args.out, args.write_model):
        if path is not None:
            files.check_output(path)  # before the solve, not after it
    inst = load_instance(args.instance, args.step)
    check = getattr(method, "check", None)
    if callable(check):
        check(inst)
    if args.write_model is not None:
        # Pyomo is imported only here (import-linter's one allowed exception for solve).
        from dtasm_opt.models.step_milp import write_model

        write_model(inst, args.write_model)
    sol = judge(method, inst, step=0)
    text = render(sol, args.instance)
    if args.out is None:
        sys.stdout.write(cli.for_terminal(text))
        sys.stdout.flush()
    else:
        files.write_text_atomic(args.out, text)
    cli.say(args, summary(sol, inst))
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
