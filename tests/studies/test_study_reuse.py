"""``study --reuse``: which cells a rerun takes from other folders (unchanged cells, the first
steps of a longer rollout) and which it must recompute (an edited method, another revision,
a setting or time limit that could change a row), with rows equal to a fresh run's."""

from __future__ import annotations

import dataclasses
import json
import tomllib

import pytest
from tiny_study import BASELINES, TINY, rows_of, write

from dtasm_opt import study
from dtasm_opt.errors import InputError
from dtasm_opt.solvers import registry
from dtasm_opt.studies.spec import load


def run(spec, out, *flags: str) -> int:
    """``study SPEC --out OUT FLAGS --no-plots``: these tests check rows and ledgers, and the
    figures are most of a tiny study's time."""
    return study.main([str(spec), "--out", str(out), *flags, "--no-plots"])


def test_reuse_recomputes_only_the_cells_of_an_edited_method(tmp_path, capsys):
    """After an edit of one method's table, `--reuse OLD` copies every other cell from the
    old folder; the result equals a fresh run of the edited spec."""
    before = TINY.replace(BASELINES, '["nearest", "danearest", "milp"]')
    after = before + "\n[method.milp]\nnode_limit = 1\ntime_limit_s = 60.0\n"
    old, new, fresh = tmp_path / "old", tmp_path / "new", tmp_path / "fresh"
    assert run(write(tmp_path, before, "a.toml"), old, "--quiet") == 0
    spec_after = str(write(tmp_path, after, "b.toml"))
    capsys.readouterr()
    assert run(spec_after, new, "--reuse", str(old)) == 0
    assert "8 unchanged cells taken from" in capsys.readouterr().err  # 2 methods x 2 x 2
    assert run(spec_after, fresh, "--quiet") == 0
    assert rows_of(new / "results.csv") == rows_of(fresh / "results.csv")
    ledger = [json.loads(line) for line in (new / "cells.jsonl").read_text().splitlines()]
    copied = [e for e in ledger if e.get("adopted_from") == str(old)]
    assert {e["key"].split("|")[0] for e in copied} == {"nearest", "danearest"}
    old_ledger = {json.loads(line)["key"]: json.loads(line)
                  for line in (old / "cells.jsonl").read_text().splitlines()}  # fmt: skip
    for e in copied:
        assert (new / "parts" / e["part"]).read_bytes() == (old / "parts" / e["part"]).read_bytes()
        assert e["wall_s"] == old_ledger[e["key"]]["wall_s"]  # the time that computed it


def test_reuse_pads_stage2_columns_for_methods_without_a_tie_break(tmp_path, capsys):
    """Switching stage2_columns on adds columns; `--reuse` still takes the cells of methods
    that leave them empty (padded), recomputes the exact ones, and the result equals a fresh
    run's."""
    before = TINY.replace(BASELINES, '["nearest", "milp"]')
    after = before.replace("last = 3\n", "last = 3\nstage2_columns = true\n")
    old, new, fresh = tmp_path / "old", tmp_path / "new", tmp_path / "fresh"
    assert run(write(tmp_path, before, "a.toml"), old, "--quiet") == 0
    spec_after = str(write(tmp_path, after, "b.toml"))
    capsys.readouterr()
    assert run(spec_after, new, "--reuse", str(old)) == 0
    assert "4 unchanged cells taken from" in capsys.readouterr().err  # nearest x 2 x 2
    assert run(spec_after, fresh, "--quiet") == 0
    assert rows_of(new / "results.csv") == rows_of(fresh / "results.csv")
    assert (new / "results.csv").read_bytes().count(b"\n") == (
        fresh / "results.csv"
    ).read_bytes().count(b"\n")


@pytest.mark.parametrize(
    "was, part_a, part_b",
    [
        ('methods = ["nearest", "danearest"]', 'methods = ["nearest"]', 'methods = ["danearest"]'),
        ("seeds = [1, 2]", "seeds = [1]", "seeds = [2]"),
        ("values = [0.8, 1.2]", "values = [0.8]", "values = [1.2]"),
    ],
    ids=["methods", "seeds", "sweep values"],
)
def test_reuse_takes_each_cell_from_the_first_folder_that_has_it(
    tmp_path, capsys, was, part_a, part_b
):
    """A study split in two by methods, seeds or sweep values (each part its own spec and
    folder, run apart: on two machines, say), then put together by two `--reuse`: every cell
    is taken, none is run again, and the rows equal one run of the whole spec."""
    whole = TINY.replace(BASELINES, '["nearest", "danearest"]')
    spec = write(tmp_path, whole, "s.toml")
    a, b, new, fresh = (tmp_path / d for d in ("a", "b", "new", "fresh"))
    assert whole.count(was) == 1
    for part, out in ((part_a, a), (part_b, b)):
        path = write(tmp_path, whole.replace(was, part), f"{out.name}.toml")
        assert run(path, out, "--quiet") == 0
    capsys.readouterr()
    assert run(spec, new, "--reuse", str(a), "--reuse", str(b)) == 0
    err = capsys.readouterr().err
    assert "4 unchanged cells taken from" in err and "8 of 8 cells already complete" in err
    assert run(spec, fresh, "--quiet") == 0
    assert rows_of(new / "results.csv") == rows_of(fresh / "results.csv")


def test_no_cell_of_another_revision_is_reused_or_resumed(tmp_path, capsys, monkeypatch):
    """A change that moves a method's decisions raises its registry revision. The spec's
    fingerprints cover the spec, not the code: so `--reuse` recomputes that method's cells,
    its saved progress no longer resumes (the cell fingerprint changes), and a resumed
    folder names the complete cells of the older revision that it keeps."""
    spec_path = write(tmp_path, TINY.replace(BASELINES, '["nearest", "danearest"]'), "s.toml")
    old, new = tmp_path / "old", tmp_path / "new"
    assert run(spec_path, old, "--quiet") == 0
    spec = load(spec_path)
    cell = next(c for c in spec.cells() if c.method == "nearest")
    before = spec.cell_fingerprint(cell)
    bumped = dataclasses.replace(registry.info("nearest"), revision=1)
    monkeypatch.setitem(registry._BY_NAME, "nearest", bumped)
    assert spec.cell_fingerprint(cell) != before
    capsys.readouterr()
    assert run(spec_path, new, "--reuse", str(old)) == 0
    assert "4 unchanged cells taken from" in capsys.readouterr().err  # danearest x 2 x 2
    ledger = [json.loads(line) for line in (new / "cells.jsonl").read_text().splitlines()]
    assert {e["key"].split("|")[0] for e in ledger if "adopted_from" in e} == {"danearest"}
    assert {e.get("revision") for e in ledger if e["key"].startswith("nearest|")} == {1}
    assert {e.get("revision") for e in ledger if e["key"].startswith("danearest|")} == {None}
    assert rows_of(new / "results.csv") == rows_of(old / "results.csv")  # nearest's did not move
    assert run(spec_path, old) == 0  # resume the old folder
    assert "4 complete cells (nearest|seed=1|xi=0.8, " in capsys.readouterr().err


LONG = """
[study]
name = "long"
methods = ["milp", "nearest", "hindsight-bound"]
seeds = [1, 2]
steps = 8
last = 3
stage2_columns = true

[scenario]
users = 30
servers = 3
xi = 1.2

[method.hindsight-bound]
window = 4
"""
SHORT = (
    TINY.replace(BASELINES, '["milp", "nearest"]')
    .replace("last = 3\n", "last = 3\nstage2_columns = true\n")
    .replace("users = 20", "users = 30")
)


def test_reuse_takes_an_exact_policys_first_steps_from_another_study(tmp_path, capsys):
    """A swept study takes MILP-greedy's cells at xi = 1.2 from the first 5 of 8 steps of
    another study's (no sweep, another column set: a bound's window column): rollouts that
    decide each step from its state alone. Its other cells (xi = 0.8, and the heuristic's,
    never taken this way) are computed; the rows equal a fresh run's."""
    old, new, fresh = tmp_path / "old", tmp_path / "new", tmp_path / "fresh"
    assert run(write(tmp_path, LONG, "long.toml"), old, "--quiet") == 0
    spec = str(write(tmp_path, SHORT, "short.toml"))
    capsys.readouterr()
    assert run(spec, new, "--reuse", str(old)) == 0
    err = capsys.readouterr().err
    assert "0 unchanged cells taken from" in err
    assert "2 cells taken from the first steps of" in err  # milp at xi = 1.2, seeds 1 and 2
    assert run(spec, fresh, "--quiet") == 0
    assert rows_of(new / "results.csv") == rows_of(fresh / "results.csv")
    ledger = [json.loads(line) for line in (new / "cells.jsonl").read_text().splitlines()]
    taken = {e["key"]: e for e in ledger if "adopted_cell" in e}
    assert set(taken) == {"milp|seed=1|xi=1.2", "milp|seed=2|xi=1.2"}
    assert taken["milp|seed=2|xi=1.2"]["adopted_cell"] == "milp|seed=2"
    assert all(e["adopted_from"] == str(old) and e["wall_s"] is None for e in taken.values())
    statuses = {r["stage2_status"] for r in rows_of(new / "results.csv") if r["method"] == "milp"}
    assert statuses == {"optimal"}  # the tie-break columns came along


def test_reuse_says_one_cell_in_the_singular(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    long = LONG.replace("seeds = [1, 2]", "seeds = [1]")
    assert long != LONG
    assert run(write(tmp_path, long, "long.toml"), old, "--quiet") == 0
    capsys.readouterr()
    spec = str(write(tmp_path, SHORT, "short.toml"))
    assert run(spec, new, "--reuse", str(old)) == 0
    assert "1 cell taken from the first steps of" in capsys.readouterr().err  # milp, seed 1


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (("steps = 8", "steps = 4"), "the other cell is shorter"),
        (("last = 3\n", "last = 3\nstream_steps = 3\n"), "its stream starts again at step 3"),
        (("window = 4\n", "window = 4\n[method.milp]\nnode_limit = 1\n"), "other options"),
    ],
)
def test_reuse_takes_no_first_steps_that_could_differ(tmp_path, capsys, edit, why):
    old, new = tmp_path / "old", tmp_path / "new"
    long = LONG.replace(*edit)
    assert long != LONG, why
    assert run(write(tmp_path, long, "long.toml"), old, "--quiet") == 0
    capsys.readouterr()
    spec = str(write(tmp_path, SHORT, "short.toml"))
    assert run(spec, new, "--reuse", str(old)) == 0
    err = capsys.readouterr().err
    assert "taken from the first steps" not in err, why
    assert "8 of 8 cells" not in err
    ledger = [json.loads(line) for line in (new / "cells.jsonl").read_text().splitlines()]
    assert not any("adopted_cell" in e for e in ledger), why  # every milp cell recomputed
    assert {e["key"] for e in ledger if e["key"].startswith("milp")} == {
        f"milp|seed={s}|xi={x}" for s in (1, 2) for x in ("0.8", "1.2")
    }


def _with_time_limit(text: str, seconds: float | None) -> str:
    """``text`` with MILP-greedy's wall-clock limit (None: unset)."""
    return text if seconds is None else text + f"\n[method.milp]\ntime_limit_s = {seconds}\n"


def test_reuse_takes_first_steps_run_under_a_smaller_time_limit(tmp_path, capsys):
    """A larger safety net changes no row that the smaller one did not stop: MILP-greedy's
    cells at xi = 1.2 come from the other study's, run with 30 s where this one has 60 s,
    and equal a fresh run's; the ledger names the limits they ran under."""
    old, new, fresh = tmp_path / "old", tmp_path / "new", tmp_path / "fresh"
    long = write(tmp_path, _with_time_limit(LONG, 30.0), "long.toml")
    assert run(long, old, "--quiet") == 0
    spec = str(write(tmp_path, _with_time_limit(SHORT, 60.0), "short.toml"))
    capsys.readouterr()
    assert run(spec, new, "--reuse", str(old)) == 0
    err = capsys.readouterr().err
    assert "2 cells taken from the first steps of" in err
    assert "2 of them ran under a smaller time limit" in err
    assert run(spec, fresh, "--quiet") == 0
    assert rows_of(new / "results.csv") == rows_of(fresh / "results.csv")
    ledger = [json.loads(line) for line in (new / "cells.jsonl").read_text().splitlines()]
    taken = [e for e in ledger if "adopted_cell" in e]
    assert len(taken) == 2 and all(e["adopted_safety_nets_s"] == [30.0, 30.0] for e in taken)


@pytest.mark.parametrize(
    ("old_s", "new_s", "why"),
    [
        (60.0, 30.0, "this study's limit is smaller: it might stop a step the other did not"),
        (1e-4, 60.0, "the other cell's steps took longer than its limit: it may have stopped them"),
        (None, 60.0, "the other cell ran under the method's own default"),
    ],
)
def test_reuse_takes_no_first_steps_a_time_limit_may_have_changed(
    tmp_path, capsys, old_s, new_s, why
):
    old, new = tmp_path / "old", tmp_path / "new"
    long = write(tmp_path, _with_time_limit(LONG, old_s), "long.toml")
    assert run(long, old, "--quiet") == 0
    capsys.readouterr()
    spec = str(write(tmp_path, _with_time_limit(SHORT, new_s), "short.toml"))
    assert run(spec, new, "--reuse", str(old)) == 0
    err = capsys.readouterr().err
    assert "taken from the first steps" not in err, why
    ledger = [json.loads(line) for line in (new / "cells.jsonl").read_text().splitlines()]
    assert not any("adopted_cell" in e for e in ledger), why


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--reuse", "missing"], "not a folder"), (["--reuse", "."], "not a study folder")],
)
def test_reuse_of_something_else_exits_2(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert study.main([str(write(tmp_path, TINY)), "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_named_node_cap_sets_the_engines_cells_apart():
    """The tree's node cap changed (one node per 20 rounds, then per 8) without a setting
    that said so: a spec naming ``tree_nodes`` gives its engine cells another run identity,
    so ``--reuse`` takes no cell of a spec that did not (a shipped study's, on the old cap);
    the spec refuses a negative cap by name."""
    from dtasm_opt.studies.spec import parse

    base = (
        '[study]\nname = "t"\nmethods = ["lag"]\nseeds = [1]\nsteps = 4\nlast = 2\n'
        "stage2_columns = true\n[scenario]\nusers = 20\nservers = 2\n"
        '[method.lag]\nmethod = "lagrangian"\nnode_limit = 20\n'
    )
    plain, named = tomllib.loads(base), tomllib.loads(base + "tree_nodes = 50000\n")
    a, b = parse(plain), parse(named)
    cell = a.cells()[0]
    assert b.method("lag").options["tree_nodes"] == 50_000
    assert a.run_identity(cell) is not None
    assert a.run_identity(cell) != b.run_identity(cell)
    assert a.run_identity(cell, safety_nets=False) != b.run_identity(cell, safety_nets=False)
    with pytest.raises(InputError, match="tree_nodes"):
        parse(tomllib.loads(base + "tree_nodes = -1\n"))
