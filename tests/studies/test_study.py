"""The study runner: specs, end-to-end runs, backends and reports (``--reuse``:
test_study_reuse.py; resuming after a kill: test_study_resume.py)."""

from __future__ import annotations

import json
import os
import platform
from collections import defaultdict

import pytest
from tiny_study import BASELINES, N_CELLS, ROOT, TINY, quiet, rows_of, write

from dtasm_opt import study
from dtasm_opt.core.records import STAGE2_COLUMNS
from dtasm_opt.studies.runner import run_study
from dtasm_opt.studies.spec import load


def test_spec_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    assert study.main([str(write(tmp_path, TINY)), "--out", str(out)]) == 0
    for name in ("results.csv", "manifest.json", "summary.md", "sweep.png", "users_on_edge.png"):
        assert (out / name).stat().st_size > 0, name
    rows = rows_of(out / "results.csv")
    assert len(rows) == N_CELLS * 5
    keys = {(r["method"], r["seed"], r["xi"], r["step"]) for r in rows}
    assert len(keys) == len(rows)  # one row per (method, seed, sweep value, step)
    assert {r["study"] for r in rows} == {"tiny"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["spec"].strip() == TINY.strip()
    assert manifest["packages"]["numpy"]
    assert manifest["config"]["seeds"] == [1, 2]
    (run,) = manifest["runs"]  # where the rows were made (docs/design.md, "Across machines")
    assert run["machine"]["arch"] == platform.machine()
    assert run["machine"]["cores"] == os.cpu_count()
    summary = (out / "summary.md").read_text()
    assert "| 1.2 | danearest | 2 | 3 |" in summary


def test_no_plots_writes_results_and_summary_and_report_only_draws_them(tmp_path, capsys):
    """`--no-plots` (a part of a split study, a headless run) leaves the figures out and
    says so; `--report-only` then draws the very figures a plain run draws."""
    out, plain = tmp_path / "out", tmp_path / "plain"
    spec = str(write(tmp_path, TINY.replace(BASELINES, '["nearest"]')))
    assert study.main([spec, "--out", str(out), "--no-plots"]) == 0
    assert "no plots: --report-only draws them" in capsys.readouterr().err
    assert (out / "summary.md").stat().st_size > 0 and not list(out.glob("*.png"))
    assert study.main([spec, "--out", str(out), "--report-only", "--quiet"]) == 0
    assert study.main([spec, "--out", str(plain), "--quiet"]) == 0
    drawn = sorted(p.name for p in out.glob("*.png"))
    assert (
        drawn
        == sorted(p.name for p in plain.glob("*.png"))
        == [
            "sweep.png",
            "users_on_edge.png",
        ]
    )


def test_same_seed_same_rows_and_rerun_skips_completed_cells(tmp_path):
    spec = load(write(tmp_path, TINY))
    a = run_study(spec, tmp_path / "a", log=quiet)
    assert (a["ran"], a["skipped"], a["failed"]) == (N_CELLS, 0, {})
    b = run_study(spec, tmp_path / "b", workers=2, log=quiet)  # the process pool
    assert rows_of(tmp_path / "a/results.csv") == rows_of(tmp_path / "b/results.csv")
    before = (tmp_path / "a/results.csv").read_bytes()
    again = run_study(spec, tmp_path / "a", log=quiet)
    assert (again["ran"], again["skipped"]) == (0, N_CELLS)
    assert (tmp_path / "a/results.csv").read_bytes() == before
    assert b["ran"] == N_CELLS


def test_ray_backend_gives_the_local_rows(tmp_path):
    pytest.importorskip("ray")
    spec = load(write(tmp_path, TINY))
    run_study(spec, tmp_path / "local", log=quiet)
    r = run_study(spec, tmp_path / "ray", backend="ray", workers=2, log=quiet)
    assert r["failed"] == {}
    assert rows_of(tmp_path / "ray/results.csv") == rows_of(tmp_path / "local/results.csv")


def test_changed_spec_is_refused_in_the_same_folder(tmp_path, capsys):
    out = tmp_path / "out"
    assert study.main([str(write(tmp_path, TINY)), "--out", str(out), "--no-plots"]) == 0
    other = write(tmp_path, TINY.replace("seeds = [1, 2]", "seeds = [1, 3]"), "other.toml")
    capsys.readouterr()
    assert study.main([str(other), "--out", str(out)]) == 2
    assert "another spec" in capsys.readouterr().err


def test_solve_kind_and_per_step_optimum(tmp_path):
    solve = """
[study]
name = "scaling"
kind = "solve"
methods = ["milp", "milp-pyomo", "danearest"]
seeds = [1, 2]
[method.milp-pyomo]
method = "milp"
backend = "pyomo"
[sweep]
axis = "size"
values = [[10, 2], [16, 3]]
"""
    out = tmp_path / "solve"
    assert study.main([str(write(tmp_path, solve)), "--out", str(out)]) == 0
    rows = rows_of(out / "results.csv", drop_timing=False)
    assert len(rows) == 3 * 2 * 2 and (out / "solve_time.png").exists()
    load_of = {(r["method"], r["seed"], r["size"]): float(r["cloud_load_bytes"]) for r in rows}
    for (method, seed, size), cloud in load_of.items():
        # Two HiGHS front ends agree on the optimum, and no heuristic beats it.
        assert cloud >= load_of[("milp", seed, size)] * (1 - 1e-9) - 1e-6, method
    gap = TINY.replace("steps = 5", "steps = 4\nper_step_optimum = true").replace(
        BASELINES, '["nearest", "milp"]'
    )
    out = tmp_path / "gap"
    assert study.main([str(write(tmp_path, gap, "gap.toml")), "--out", str(out), "--no-plots"]) == 0
    rows = rows_of(out / "results.csv")
    assert len(rows) == 2 * 2 * 2 * 4
    for r in rows:  # the step optimum from the method's own state is <= its load
        assert float(r["step_optimum_bytes"]) <= float(r["cloud_load_bytes"]) * (1 + 1e-9) + 1e-6
        if r["method"] == "milp":
            assert float(r["step_optimum_bytes"]) == pytest.approx(float(r["cloud_load_bytes"]))
    assert "step-opt MB" in (out / "summary.md").read_text()


BAD = [
    ("", "study: missing table"),
    ("[study]\nname='x'\nmethods=['nearest']\nsteps=3", "study.seeds: missing"),
    ("[study]\nname='x'\nmethods=['nearest']\nseeds=[1]\nsteps=0", "study.steps"),
    ("[study]\nname='x'\nmethods=['nearest']\nseeds=[1]\nsteps=3\nfoo=1", "study.foo: unknown"),
    ("[study]\nname='x'\nmethods=['nope']\nseeds=[1]\nsteps=3", "study.methods"),
    ("[study]\nname='x'\nkind='fly'\nmethods=['nearest']\nseeds=[1]\nsteps=3", "study.kind"),
    (
        "[study]\nname='x'\nmethods=['nearest']\nseeds=[1]\nsteps=3\n[scenario]\nusers='many'",
        "scenario.users",
    ),
    (
        "[study]\nname='x'\nmethods=['nearest']\nseeds=[1]\nsteps=3\n[scenario]\nusers=0",
        "scenario: users",
    ),
    (
        "[study]\nname='x'\nmethods=['nearest']\nseeds=[1]\nsteps=3\n[sweep]\naxis='colour'\n"
        "values=[1]",
        "sweep.axis",
    ),
    (
        "[study]\nname='x'\nmethods=['nearest']\nseeds=[1]\nsteps=3\n[sweep]\naxis='xi'\n"
        "values=[1.0, 'a']",
        "sweep.values[1]",
    ),
    (
        "[study]\nname='x'\nmethods=['nearest']\nseeds=[1]\nsteps=3\n[sweep]\naxis='discount'\n"
        "values=[0.1]",
        "sweep.axis: 'discount'",
    ),
    (
        "[study]\nname='x'\nmethods=['milp']\nseeds=[1]\nsteps=3\n[method.milp]\ntime_limit_s=-1",
        "method.milp.time_limit_s",
    ),
    (
        "[study]\nname='x'\nmethods=['milp']\nseeds=[1]\nsteps=3\n[method.milp]\nlr=0.1",
        "method.milp.lr: unknown",
    ),
    ("[study\nname='x'", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "field"), BAD)
def test_bad_specs_exit_2_naming_the_field(tmp_path, capsys, text, field):
    path = write(tmp_path, text)
    assert study.main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and field in err[0], err
    assert not (tmp_path / "out").exists()


def test_shipped_specs_parse():
    specs = sorted((ROOT / "studies").glob("*.toml"))
    assert {p.stem for p in specs} >= {
        "fig4_training",
        "fig5_discount",
        "fig6_users",
        "fig7_xi",
        "gap",
        "solver_scaling",
    }
    for p in specs:
        full, quick = load(p), load(p, quick=True)
        assert quick.steps <= full.steps and quick.quick and quick.cells()


def test_hindsight_bound_cells_bound_every_method(tmp_path):
    pytest.importorskip("dtasm_opt.models.hindsight")
    text = TINY.replace(BASELINES, '["nearest", "danearest", "milp", "hindsight-bound"]')
    text = text.replace("steps = 5", "steps = 4") + "[method.hindsight-bound]\nwindow = 2\n"
    spec = load(write(tmp_path, text))
    r = run_study(spec, tmp_path / "out", log=quiet)
    assert r["failed"] == {}
    rows = rows_of(tmp_path / "out/results.csv")
    bounds = [r for r in rows if r["method"] == "hindsight-bound"]
    assert len(bounds) == 2 * 2 * 2 and {r["window_steps"] for r in bounds} == {"2"}
    total = defaultdict(float)
    for r in rows:
        total[(r["method"] == "hindsight-bound", r["method"], r["seed"], r["xi"])] += float(
            r["cloud_load_bytes"]
        )
    for (is_bound, method, seed, xi), cloud in total.items():
        if not is_bound:  # the realised total of every policy is >= the certified bound
            assert cloud >= total[(True, "hindsight-bound", seed, xi)] - 1e-6, (method, seed, xi)
    from dtasm_opt.studies.report import write_summary

    text = write_summary(spec, tmp_path / "out/results.csv", tmp_path / "summary.md")
    assert "Against the hindsight lower bound" in text
    from dtasm_opt.studies.plots import write_plots

    made = write_plots(spec, tmp_path / "out/results.csv", tmp_path)
    assert {p.name for p in made} == {"sweep.png", "users_on_edge.png", "gap.png"}
    assert (tmp_path / "gap.png").stat().st_size > 0


def test_summary_downtime_ignores_seeds_that_moved_nobody(tmp_path):
    # Seed 1 migrates 2 users (3 s in all), seed 2 nobody: downtime is seed 1's 1500 ms with
    # no interval, not the mean of 1500 and a made-up 0.
    from dtasm_opt.studies.report import summarize

    spec = load(write(tmp_path, TINY.split("[sweep]")[0]))  # no sweep axis
    header = "study,seed,method,step,cloud_load_bytes,total_downtime_s,migrated,"
    header += "migration_failed,rejected,users_on_edge,decision_time_s\n"
    lines = [
        "tiny,1,nearest,0,0,3.0,2,0,0,20,0.001",
        "tiny,2,nearest,0,1048576,0.0,0,0,1,19,0.001",
    ]
    path = tmp_path / "results.csv"
    path.write_text(header + "\n".join(lines) + "\n")
    (row,) = summarize(spec, path)[0]
    assert row["downtime_ms"] == (1500.0, None)
    assert row["cloud_mb"][0] == 0.5 and row["cloud_mb"][1] is not None
    assert row["migrated"][0] == 1.0


@pytest.mark.parametrize(
    "spec_path",
    [
        p
        for p in sorted((ROOT / "studies").glob("*.toml"))
        if (p.with_suffix("") / "manifest.json").exists()
    ],
    ids=lambda p: p.stem,
)
def test_shipped_results_still_belong_to_their_spec(spec_path):
    """A rerun of a shipped spec resumes its folder: the spec's fingerprint and columns, as
    this code parses them, are the ones its manifest recorded."""
    from dtasm_opt.core import files
    from dtasm_opt.studies.cells import columns

    spec = load(spec_path)
    manifest = files.read_json(spec_path.with_suffix("") / "manifest.json")
    assert spec.fingerprint() == manifest["fingerprint"]
    assert list(columns(spec)) == manifest["columns"]


def test_a_shipped_spec_runs_by_name_from_any_folder_into_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert study.main(["--list"]) == 0  # the real package data
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("fig6_users", "gap", "solver_scaling"))
    tiny = write(tmp_path, TINY, "tiny.toml")
    monkeypatch.setattr(study, "shipped_specs", lambda: {"tiny": tiny})
    assert study.main(["tiny", "--quiet", "--no-plots"]) == 0
    assert (tmp_path / "runs" / "tiny" / "results.csv").exists()
    assert study.main(["no_such_study"]) == 2
    assert "shipped:" in capsys.readouterr().err


def test_progress_follows_rows_of_running_cells(tmp_path):
    from dtasm_opt.studies.runner import lock_folder, run_locked

    spec = load(write(tmp_path, TINY.replace("steps = 5", "steps = 40")))
    seen: list[tuple] = []
    with lock_folder(tmp_path / "out"):
        run_locked(spec, tmp_path / "out", workers=2, log=quiet,
                   on_progress=lambda *a: seen.append(a))  # fmt: skip
    assert seen and seen[-1] == (N_CELLS, N_CELLS, N_CELLS * 40, N_CELLS * 40)
    assert all(a[2] <= a[3] for a in seen)


WORK_LIMITED = """
[study]
name = "repeatable"
methods = ["milp", "cpsat", "nearest"]
seeds = [1, 2]
steps = 3
last = 3
per_step_optimum = true
optimum_node_limit = 1

[scenario]
users = 80
servers = 2

[method.milp]
node_limit = 1
time_limit_s = 60.0

[method.cpsat]
deterministic_limit = 0.05
time_limit_s = 60.0
"""


def test_exact_cells_stopped_by_work_limits_repeat_row_for_row(tmp_path):
    """Two runs (one worker, then two) of a spec whose exact methods stop at their work
    limits, not at an optimum, give identical rows: only the timing columns differ."""
    spec = write(tmp_path, WORK_LIMITED)
    runs = []
    for workers in ("1", "2"):
        out = tmp_path / f"run{workers}"
        args = [str(spec), "--out", str(out), "--workers", workers, "--quiet", "--no-plots"]
        assert study.main(args) == 0
        runs.append(rows_of(out / "results.csv"))
    assert runs[0] == runs[1]
    status = {r["method"]: set() for r in runs[0]}
    for r in runs[0]:
        status[r["method"]].add(r["status"])
    assert "work_limit" in status["milp"] and "work_limit" in status["cpsat"]
    assert "time_limit" not in status["milp"] | status["cpsat"]


def test_stage2_columns_carry_each_exact_methods_tie_break(tmp_path):
    """With stage2_columns, the rows of exact methods give their tie-break's status, value and
    bound, in agreement with each other and with what the simulator counted; a heuristic's
    rows leave them empty."""
    text = (
        TINY.replace(BASELINES, '["nearest", "milp", "lagrangian"]')
        .replace("last = 3\n", "last = 3\nstage2_columns = true\n")
        .replace("users = 20", "users = 45")  # later steps that need migrations
    )
    out = tmp_path / "out"
    assert study.main([str(write(tmp_path, text)), "--out", str(out), "--quiet", "--no-plots"]) == 0
    rows = rows_of(out / "results.csv")
    assert set(STAGE2_COLUMNS) <= set(rows[0])
    for r in rows:
        if r["method"] == "nearest":
            assert all(r[c] == "" for c in STAGE2_COLUMNS)
            continue
        assert r["stage2_status"] == "optimal"  # tiny states: every tie-break is proven
        assert float(r["stage2_bound"]) == float(r["stage2_objective"])
        assert float(r["stage2_objective"]) >= int(r["migrated"]) - int(r["migration_failed"])
    milp = [r["stage2_objective"] for r in rows if r["method"] == "milp"]
    engine = [r["stage2_objective"] for r in rows if r["method"] == "lagrangian"]
    assert milp == engine  # both proven: the same fewest migrations at every step
    summary = (out / "summary.md").read_text()
    table = summary.split("## Tie-break of the exact methods")[1]
    # 2 seeds x the last 3 steps, per xi; every step proven; no bound short of its value
    assert "| 0.8 | milp | 6 | 6 | 6 |" in table and "| 1.2 | lagrangian | 6 | 6 | 6 |" in table
    assert "nearest" not in table
    (line,) = (row for row in table.splitlines() if row.startswith("| 0.8 | milp |"))
    median, p90, longest = (float(c) for c in line.strip("| ").split(" | ")[-3:])
    assert 0 < median <= p90 <= longest  # seconds per step: median, p90, max


def test_a_one_cell_study_says_cell_and_worker_in_the_singular(tmp_path, capsys):
    one = (
        '[study]\nname = "one"\nmethods = ["nearest"]\nseeds = [1]\nsteps = 8\nlast = 3\n'
        "[scenario]\nusers = 30\nservers = 3\nxi = 1.2\n"
    )
    args = [str(write(tmp_path, one, "one.toml")), "--out", str(tmp_path / "o"), "--no-plots"]
    assert study.main(args) == 0
    assert f"one: 1 cell -> {tmp_path / 'o'} (local, 1 worker)" in capsys.readouterr().err
