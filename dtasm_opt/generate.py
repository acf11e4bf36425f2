"""``python -m dtasm_opt.generate``: write a Table II instance, or a stream with ``--steps``.

    python -m dtasm_opt.generate --users 200 --servers 8 --seed 1 --out inst.json
    python -m dtasm_opt.generate --users 200 --servers 8 --seed 1 --steps 500 --out s.json.gz
    python -m dtasm_opt.generate --users 300 --servers 8 --seed 1 --set sets/u300-h8 --count 10
    python -m dtasm_opt.generate --users 280 --servers 8 --seed 1 --set sets/u280-h8-t20 \
        --at-step 20 --count 10

A ``.json.gz`` name is written gzip-compressed. The file is written atomically, so a refused or
interrupted run leaves no partial output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dtasm_opt import cli
from dtasm_opt.core import files
from dtasm_opt.core.generator import MOBILITY, Scenario, generate_instance, generate_stream
from dtasm_opt.core.limits import (
    MAX_APPS,
    MAX_COUNT,
    MAX_SERVERS,
    MAX_STEPS,
    MAX_THREADS,
    MAX_USERS,
)
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.errors import InputError
from dtasm_opt.experiments.instance_set import MAX_AT_STEP, write_set
from dtasm_opt.solvers.registry import REFERENCE, policies

PROG = "python -m dtasm_opt.generate"


def build_parser() -> cli.Parser:
    defaults = Scenario()
    p = cli.make_parser(PROG, "Generate a DTASM instance (one step) or stream (--steps T).")
    g = p.add_argument_group("scenario (Table II of the paper)")
    g.add_argument("--users", type=cli.count(1, MAX_USERS), required=True, help="number of users U")
    g.add_argument(
        "--servers", type=cli.count(1, MAX_SERVERS), required=True, help="edge servers H"
    )
    g.add_argument("--seed", type=cli.seed, required=True, help="the one seed of every draw")
    g.add_argument(
        "--steps",
        type=cli.count(1, MAX_STEPS),
        default=None,
        help="write a stream of T steps (none: one instance)",
    )
    g.add_argument("--xi", type=cli.real(0.0), default=defaults.xi_s, help="xi (s)")
    g.add_argument(
        "--mobility", choices=MOBILITY, default=defaults.mobility, help="RAN mobility per step"
    )
    g.add_argument(
        "--stay-prob",
        type=cli.real(0.0),
        default=defaults.stay_prob,
        help="Markov mobility: probability p that a user keeps its RAN",
    )
    g.add_argument(
        "--gamma-shape",
        type=cli.real(0.0, strict=True),
        default=defaults.gamma_shape,
        help="shape k of the RAN popularity w_h ~ Gamma(k, 1)",
    )
    g.add_argument("--apps", type=cli.count(1, MAX_APPS), default=defaults.apps, help="kinds F")
    g.add_argument("--name", default=None, help="name stored in the file")
    # The destination is a required mutually exclusive group so that another destination
    # (a benchmark set: --set DIR with --count N) can be added beside --out.
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out", metavar="PATH", help="output file (.json or .json.gz)")
    dest.add_argument(
        "--set",
        metavar="DIR",
        help="a benchmark set: --count instances (seeds SEED, SEED+1, ...), each solved "
        "exactly, with a manifest of reference values (resumes an interrupted run)",
    )
    s = p.add_argument_group("benchmark sets (--set)")
    s.add_argument("--count", type=cli.count(1, MAX_COUNT), default=10, help="instances in the set")
    s.add_argument(
        "--at-step",
        type=cli.count(0, MAX_AT_STEP),
        default=0,
        metavar="T",
        help="each instance is the state at step T of a MILP-greedy rollout on its seed's stream "
        "(1 HiGHS node per stage: the same state on every machine); 0 is the stream's first step",
    )
    s.add_argument("--method", choices=policies(exact=True), default=REFERENCE, help="exact solver")
    s.add_argument(
        "--time-limit", type=cli.real(0.0, strict=True), default=60.0, help="s per instance"
    )
    s.add_argument("--threads", type=cli.count(1, MAX_THREADS), default=1, help="solver threads")
    cli.add_work_limit_options(s)
    cli.add_output_options(p)
    return p


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The :class:`Scenario` the flags describe (validated by Scenario itself)."""
    return Scenario(
        users=args.users,
        servers=args.servers,
        apps=args.apps,
        xi_s=args.xi,
        mobility=args.mobility,
        stay_prob=args.stay_prob,
        gamma_shape=args.gamma_shape,
    )


def write_one(args: argparse.Namespace) -> str:
    """Generate the instance or stream of ``args`` and write it to ``args.out``."""
    scenario = scenario_from_args(args)
    if args.steps is None:
        inst = generate_instance(scenario, args.seed, name=args.name)
        files.write_json(args.out, inst.to_dict())
        return f"instance {inst.name!r} ({inst.n_users} users, {inst.n_servers} ESs)"
    stream = generate_stream(scenario, args.seed, steps=args.steps, name=args.name)
    files.write_json(args.out, stream.to_dict())
    what = f"stream {stream.name!r} ({stream.n_users} users, {stream.n_servers} ESs, "
    return what + f"{stream.n_steps} steps)"


def reporter(bar: cli.ProgressBar):
    """Each new instance moves the bar; the last one's result stands beside it."""

    def report(done: int, count: int, entry: dict, seconds: float) -> None:
        bar(done, count)
        gap = "-" if entry["gap"] is None else f"{entry['gap']:.1e}"
        bar.note(
            f"{entry['name']}: {entry['status']}, {cli.mb(entry['objective_bytes'])}, gap {gap}"
        )

    return report


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    cli.apply_output_options(args)
    if args.set is None and args.at_step:
        raise InputError("--at-step: only for a benchmark set (--set DIR)")
    if args.set is not None:
        if args.steps is not None:
            raise InputError("--steps: a benchmark set holds instances, not streams")
        settings = MethodSettings(
            seed=args.seed,
            time_limit_s=args.time_limit,
            threads=args.threads,
            **cli.work_limits(args),
        )
        bar = cli.progress_bar(args, "instance")
        try:
            manifest = write_set(
                args.set,
                scenario_from_args(args),
                args.seed,
                args.count,
                name=args.name,
                method=args.method,
                settings=settings,
                at_step=args.at_step,
                on_instance=None if bar is None else reporter(bar),
            )
        finally:
            if bar is not None:
                bar.close()
        proven = sum(e["status"] == "optimal" for e in manifest["instances"])
        n = len(manifest["instances"])
        cli.say(args, f"wrote {n} instances to {args.set} ({proven} proven optimal)")
        return cli.EXIT_OK
    files.check_output(args.out)
    what = write_one(args)
    cli.say(args, f"wrote {what} to {args.out}")
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
