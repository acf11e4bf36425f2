"""``python -m dtasm_opt.train``: train the paper's TD3 agent on a stream and log every step.

    python -m dtasm_opt.train STREAM --steps N --seed S --out DIR [--resume]
    python -m dtasm_opt.train --users 200 --servers 8 --xi 1.2 --stream-seed 1 --steps N --out DIR

DIR receives ``steps.csv`` (one row per training step: the step-record columns plus ``phase``,
``critic_loss`` and ``actor_loss``), ``last.pt`` (every ``--checkpoint-every`` steps and at the
end: everything ``--resume`` needs to continue bit for bit), ``manifest.json`` and, at the
end, ``policy.pt`` (the actor only, for ``td3:DIR/policy.pt``). Checkpoints record the system
the agent was trained on, and a policy refuses any other. The agent's flags are generated from
:class:`~dtasm_opt.solvers.td3.config.TD3Config` and the run's from
:class:`~dtasm_opt.solvers.td3.config.TrainOptions` (the loop:
:mod:`dtasm_opt.solvers.td3.training`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from dtasm_opt import cli
from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario, generate_stream
from dtasm_opt.core.limits import MAX_SERVERS, MAX_STEPS, MAX_USERS
from dtasm_opt.core.options import add_flags, from_flags
from dtasm_opt.errors import InputError

PROG = "python -m dtasm_opt.train"


def build_parser() -> cli.Parser:
    from dtasm_opt.solvers.td3.config import TD3Config, TrainOptions  # no torch: --help is fast

    p = cli.make_parser(PROG, "Train the paper's TD3 agent on a stream (Algorithm 1).")
    p.add_argument("stream", nargs="?", help="a dtasm-stream/1 file (or generate: --users ...)")
    g = p.add_argument_group("a generated stream (instead of a file)")
    g.add_argument(
        "--users",
        type=cli.count(1, MAX_USERS),
        default=None,
        help="U users (instead of a stream file)",
    )
    g.add_argument("--servers", type=cli.count(1, MAX_SERVERS), default=8, help="H edge servers")
    g.add_argument("--xi", type=cli.real(0.0), default=1.2, help="migration bound xi in s")
    g.add_argument("--stream-seed", type=cli.seed, default=1, help="scenario seed")
    g.add_argument("--stream-steps", type=cli.count(1, MAX_STEPS), default=500, help="T steps")
    r = p.add_argument_group("the run")
    r.add_argument(
        "--steps", type=cli.count(1, MAX_STEPS), required=True, help="training steps in total"
    )
    r.add_argument("--out", required=True, metavar="DIR", help="output folder")
    r.add_argument("--resume", action="store_true", help="continue from DIR/last.pt")
    r.add_argument(
        "--checkpoint-every",
        type=cli.count(1, MAX_STEPS),
        default=500,
        help="steps between checkpoints",
    )
    r.add_argument(
        "--quiet",
        "--no-progress",
        dest="quiet",
        action="store_true",
        help="no progress bar or messages on stderr",
    )
    add_flags(r, TrainOptions)
    add_flags(p.add_argument_group("the agent (TD3Config; defaults: the paper's)"), TD3Config)
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from dtasm_opt.solvers.td3.config import TD3Config, TrainOptions
    from dtasm_opt.solvers.td3.training import train

    if (args.stream is None) == (args.users is None):
        raise InputError("stream: give a stream file or --users (not both)")
    cfg = TD3Config(**from_flags(args, TD3Config))
    options = TrainOptions(**from_flags(args, TrainOptions))
    if args.stream is not None:
        stream = files.read_stream(args.stream)
    else:
        scenario = Scenario(users=args.users, servers=args.servers, xi_s=args.xi)
        stream = generate_stream(scenario, args.stream_seed, steps=args.stream_steps)
    summary = train(
        stream,
        cfg,
        args.out,
        args.steps,
        options=options,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    print(json.dumps(summary))
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
