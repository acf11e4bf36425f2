"""A mutation list over every command line's inputs: one flag (or input file) of a valid
command made invalid at a time, every case of the table below (346 now). Every such
command must exit 2 with exactly one ``error:`` line, print no traceback and leave no file
behind (docs/design.md §5)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from dtasm_opt import bound, demo, generate, rollout, solve, study, train, verify
from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream

COUNT = ["0", "-1", "x", "", "1.5", "99999999999"]  # integers >= 1, bounded
COUNT0 = ["-1", "x", "", "1.5", "99999999999"]  # integers >= 0, bounded
SEED = ["-1", "x", "1.5", ""]
REAL = ["-1", "nan", "inf", "-inf", "x", "", "1e999"]  # finite numbers >= 0
POSITIVE = [*REAL, "0"]  # finite numbers > 0
CHOICE = ["bogus", ""]


def bad_files(tmp: Path) -> list[str]:
    """Input paths that must be refused: missing, a folder, empty, not JSON, bad gzip, a
    JSON of the wrong kind."""
    (tmp / "empty.json").write_text("")
    (tmp / "text.json").write_text("not json {")
    (tmp / "bad.json.gz").write_bytes(b"not gzip")
    (tmp / "list.json").write_text("[1, 2, 3]")
    (tmp / "trunc.json.gz").write_bytes(gzip.compress(b'{"format": "dtasm-instance/1"')[:-4])
    return [str(tmp / n) for n in ("missing.json", ".", "empty.json", "text.json", "bad.json.gz",
                                   "list.json", "trunc.json.gz")]  # fmt: skip


# command -> (main, valid argv built from the fixture paths, {flag: invalid values})
def commands(p: dict[str, str]) -> dict:
    out = p["out"]
    gen = ["--users", "12", "--servers", "3", "--seed", "1", "--out", f"{out}/g.json"]
    return {
        "generate": (
            generate.main,
            gen,
            {
                "--users": COUNT,
                "--servers": COUNT,
                "--seed": SEED,
                "--steps": COUNT,
                "--xi": REAL,
                "--stay-prob": [*REAL, "1.5"],
                "--gamma-shape": [*POSITIVE, "1e-320"],
                "--apps": COUNT,
                "--mobility": CHOICE,
                "--out": [f"{out}/nodir/x.json", out],
                "--at-step": ["-1", "x", "1.5", "1"],  # "1": only with --set
            },
        ),
        "solve": (
            solve.main,
            [p["inst"], "--method", "nearest", "--out", f"{out}/s.json"],
            {
                "--method": ["bogus", "td3", "td3:missing.pt", "py:nothing"],
                "--seed": SEED,
                "--time-limit": POSITIVE,
                "--gap": REAL,
                "--threads": COUNT,
                "--second-stage": CHOICE,
                "--stage2-time-limit": POSITIVE,
                "--backend": CHOICE,
                "--node-limit": COUNT,
                "--tree-rounds": COUNT0,
                "--open-load-tree-rounds": COUNT0,
                "--column-reach": COUNT0,
                "--tree-reach": COUNT0,
                "--column-rounds": COUNT0,
                "--neighbourhood-tries": COUNT0,
                "--deterministic-limit": POSITIVE,
                "--step": ["0", "-1", "x"],  # --step on an instance is refused too
                "--out": [f"{out}/nodir/x.json", out],
                "INPUT": p["bad_files"],
            },
        ),
        "verify": (
            verify.main,
            [p["inst"], p["sol"]],
            {"--rtol": REAL, "INPUT": p["bad_files"]},
        ),
        "rollout": (
            rollout.main,
            [p["stream"], "--methods", "nearest", "--out", f"{out}/r.csv", "--quiet"],
            {
                "--methods": ["bogus", "", ",", "nearest,nearest", "td3:missing.pt"],
                "--steps": COUNT,
                "--seed": SEED,
                "--time-limit": POSITIVE,
                "--threads": COUNT,
                "--node-limit": COUNT,
                "--tree-rounds": COUNT0,
                "--open-load-tree-rounds": COUNT0,
                "--column-reach": COUNT0,
                "--tree-reach": COUNT0,
                "--column-rounds": COUNT0,
                "--neighbourhood-tries": COUNT0,
                "--deterministic-limit": POSITIVE,
                "--out": [f"{out}/nodir/r.csv", out],
                "INPUT": [*p["bad_files"], p["inst"]],
            },
        ),
        "train": (
            train.main,
            [p["stream"], "--out", f"{out}/t", "--steps", "2", "--no-progress"],
            {
                "--steps": COUNT,
                "--seed": SEED,
                "--lr": POSITIVE,
                "--gamma": [*REAL, "1", "2"],
                "--batch-size": COUNT,
                "--hidden": ["0", "a", "", "4,-1"],
                "--warm-start-steps": COUNT0,
                "--teacher": ["bogus", "td3"],
                "--actor": CHOICE,
                "--checkpoint-every": COUNT,
                "--out": [p["inst"]],
                "INPUT": [*p["bad_files"], p["inst"]],
            },
        ),
        "bound": (
            bound.main,
            [p["stream"], "--quiet", "--out", f"{out}/b.json"],
            {
                "--steps": [*COUNT, "99"],
                "--window": COUNT,
                "--time-limit": POSITIVE,
                "--lookback": COUNT0,
                "--lp-solver": CHOICE,
                "--threads": COUNT,
                "--out": [f"{out}/nodir/b.json", out],
                "INPUT": [*p["bad_files"], p["inst"]],
            },
        ),
        "study": (
            study.main,
            [p["spec"], "--out", f"{out}/st"],
            {
                "--workers": COUNT,
                "--backend": CHOICE,
                "--reuse": [f"{out}/missing", p["inst"], out],  # not a folder; no study in it
                "--out": [p["inst"]],
                "INPUT": [*p["bad_files"], p["inst"]],
            },
        ),
        "demo": (
            demo.main,
            ["--users", "6", "--servers", "2", "--out", f"{out}/d"],
            {
                "--users": COUNT,
                "--servers": COUNT,
                "--xi": REAL,
                "--seed": SEED,
                "--time-limit": POSITIVE,
            },
        ),
    }


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("fuzz")
    inst, stream = tmp / "i.json", tmp / "s.json"
    files.write_json(inst, generate_instance(Scenario(users=12, servers=3), 1).to_dict())
    files.write_json(stream, generate_stream(Scenario(users=12, servers=3), 1, 4).to_dict())
    sol = tmp / "sol.json"
    assert solve.main([str(inst), "--method", "nearest", "--out", str(sol)]) == 0
    spec = tmp / "spec.toml"
    spec.write_text(
        '[study]\nname = "f"\nmethods = ["nearest"]\nseeds = [1]\nsteps = 2\n'
        "[scenario]\nusers = 12\nservers = 3\n"
    )
    out = tmp / "out"
    out.mkdir()
    return {
        "inst": str(inst),
        "stream": str(stream),
        "sol": str(sol),
        "spec": str(spec),
        "out": str(out),
        "bad_files": bad_files(tmp),
        "root": tmp,
    }


def mutate(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with ``flag`` set to ``value`` (the first positional for INPUT)."""
    if flag == "INPUT":
        return [value, *argv[1:]]
    if flag in argv:
        i = argv.index(flag)
        return [*argv[: i + 1], value, *argv[i + 2 :]]
    return [*argv, flag, value]


PLACEHOLDERS = {k: "x" for k in ("inst", "stream", "sol", "spec", "out")} | {"bad_files": ["x"] * 7}
CASES = [
    (name, flag, i)
    for name, (_, _, flags) in commands(PLACEHOLDERS).items()
    for flag, values in flags.items()
    for i in range(len(values))
]


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]} {c[1]} #{c[2]}")
def test_every_bad_input_is_one_line_exit_2_and_no_file(paths, capsys, case):
    name, flag, i = case
    main, argv, flags = commands(paths)[name]
    args = mutate(argv, flag, flags[flag][i])
    capsys.readouterr()
    before = snapshot(paths["root"])
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, (name, args, err)
    assert len(err) == 1 and err[0].startswith("error: "), (name, args, err)
    assert "Traceback" not in err[0] and ".tmp" not in err[0]
    assert snapshot(paths["root"]) == before, (name, args)


@pytest.mark.parametrize("name", ["generate", "solve", "verify", "rollout", "train", "bound",
                                  "study", "demo"])  # fmt: skip
def test_the_unmutated_commands_succeed(paths, name, tmp_path, monkeypatch, capsys):
    """The fuzz's base commands are valid, so each refusal above is the mutation's doing."""
    main, argv, _ = commands({**paths, "out": str(tmp_path)})[name]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
