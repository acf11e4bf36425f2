"""``python -m dtasm_opt.verify``: check a solution file against its instance.

    python -m dtasm_opt.verify INSTANCE SOLUTION [--rtol 1e-9]

The checks (:mod:`dtasm_opt.core.verify`) use the physics alone, then the simulator. Prints one
line per problem; exit 0 when the solution is valid, 1 when it is not, 2 on unreadable input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dtasm_opt import cli
from dtasm_opt.core.files import read_instance, read_json
from dtasm_opt.core.verify import verify
from dtasm_opt.core.wording import counted
from dtasm_opt.errors import InputError

PROG = "python -m dtasm_opt.verify"
EXIT_INVALID = 1


def build_parser() -> cli.Parser:
    p = cli.make_parser(PROG, "Check a dtasm-solution/1 file against its instance.")
    p.add_argument("instance", help="dtasm-instance/1 JSON (.json or .json.gz)")
    p.add_argument("solution", help="dtasm-solution/1 JSON")
    p.add_argument("--rtol", type=cli.real(0.0), default=1e-9, help="relative tolerance on loads")
    cli.add_output_options(p, solver=False)
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    inst = read_instance(args.instance)
    doc = read_json(args.solution)
    bar = cli.progress_bar(args, "nodes")  # a certificate's tree: a minute at thousands
    try:
        problems = verify(inst, doc, args.rtol, bar)
    except InputError as exc:
        raise InputError(f"{args.solution}: {exc}") from None
    finally:
        if bar is not None:
            bar.close()
    for line in problems:
        print(line)
    if problems:
        cli.say(args, f"INVALID: {len(problems)} problem(s)")
        return EXIT_INVALID
    cli.say(args, "valid")
    for line in _certified(doc):
        cli.say(args, line)
    return cli.EXIT_OK


def _certified(doc: object) -> list[str]:
    """What a valid solution's certificate proved, once verify has recomputed it."""
    info = doc.get("info") if isinstance(doc, dict) else None
    cert = info.get("certificate") if isinstance(info, dict) else None
    if not isinstance(cert, dict):
        return []
    out = []
    for stage, what in (("load", "cloud load"), ("migrations", "migrations")):
        part = cert.get(stage)
        if isinstance(part, dict) and part.get("proves_optimal") is True:
            how = (
                f"a tree of {len(part['tree'])} nodes"
                if isinstance(part.get("tree"), list)
                else f"its multipliers and {counted(len(part['cloud_sets']), 'refuted cloud set')}"
                if isinstance(part.get("cloud_sets"), list)
                else "its multipliers"
            )
            out.append(f"certificate: {what} proven optimal (recomputed from {how})")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
