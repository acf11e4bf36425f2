"""`python -m dtasm_opt.generate`: files round-trip, seeds decide everything, each flag counts."""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

from dtasm_opt import cli
from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.core.method import MethodSettings
from dtasm_opt.generate import main

BASE = ["--users", "10", "--servers", "3"]


def gen(tmp_path, name: str, *extra: str, seed: int = 1) -> tuple[int, object]:
    path = tmp_path / name
    return main([*BASE, "--seed", str(seed), *extra, "--out", str(path)]), path


def test_instance_round_trips_and_matches_the_generator(tmp_path, capsys):
    rc, path = gen(tmp_path, "i.json")
    assert rc == 0
    inst = files.read_instance(path)
    want = generate_instance(Scenario(users=10, servers=3), seed=1)
    assert inst.to_dict() == want.to_dict()
    assert (inst.n_users, inst.n_servers) == (10, 3)
    assert "wrote instance" in capsys.readouterr().err


def test_stream_round_trips_and_matches_the_generator(tmp_path):
    rc, path = gen(tmp_path, "s.json", "--steps", "7")
    assert rc == 0
    stream = files.read_stream(path)
    assert stream.n_steps == 7
    assert stream.to_dict() == generate_stream(Scenario(users=10, servers=3), 1, 7).to_dict()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    _, a = gen(tmp_path, "a.json", "--steps", "3", seed=5)
    _, b = gen(tmp_path, "b.json", "--steps", "3", seed=5)
    _, c = gen(tmp_path, "c.json", "--steps", "3", seed=6)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_gz_output_is_compressed_and_equal(tmp_path):
    _, plain = gen(tmp_path, "s.json", "--steps", "4")
    rc, packed = gen(tmp_path, "s.json.gz", "--steps", "4")
    assert rc == 0
    raw = packed.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == plain.read_bytes()
    assert files.read_stream(packed).to_dict() == files.read_stream(plain).to_dict()


def test_scalar_flags_are_honoured(tmp_path):
    rc, path = gen(tmp_path, "i.json", "--xi", "0.7", "--apps", "4", "--name", "demo")
    assert rc == 0
    inst = files.read_instance(path)
    assert inst.xi_s == 0.7
    assert inst.apps.n_apps == 4
    assert inst.users.app.max() < 4
    assert inst.name == "demo"


def test_gamma_shape_changes_the_ran_popularity(tmp_path):
    _, a = gen(tmp_path, "a.json")
    _, b = gen(tmp_path, "b.json", "--gamma-shape", "50")
    ma, mb = files.read_instance(a).meta, files.read_instance(b).meta
    assert (ma["gamma_shape"], mb["gamma_shape"]) == (2.0, 50.0)
    assert ma["ran_popularity"] != mb["ran_popularity"]
    # A large shape makes the popularity nearly uniform: less spread than the default.
    assert np.std(mb["ran_popularity"]) < np.std(ma["ran_popularity"])


def test_markov_mobility_with_stay_prob_one_keeps_every_ran(tmp_path):
    _, path = gen(tmp_path, "m.json", "--steps", "8", "--mobility", "markov", "--stay-prob", "1")
    ran = files.read_stream(path).ran
    assert np.all(ran == ran[0])
    _, iid = gen(tmp_path, "i.json", "--steps", "8")
    assert not np.all(files.read_stream(iid).ran == files.read_stream(iid).ran[0])


def test_markov_with_stay_prob_zero_is_iid(tmp_path):
    _, m = gen(tmp_path, "m.json", "--steps", "5", "--mobility", "markov", "--stay-prob", "0")
    _, i = gen(tmp_path, "i.json", "--steps", "5", "--mobility", "iid")
    assert np.array_equal(files.read_stream(m).ran, files.read_stream(i).ran)


@pytest.mark.parametrize(
    "extra",
    [
        ["--users", "-1"],
        ["--servers", "0"],
        ["--xi", "nan"],
        ["--xi", "-0.5"],
        ["--mobility", "teleport"],
        ["--stay-prob", "1.5"],
        ["--gamma-shape", "0"],
        ["--steps", "0"],
        ["--seed", "-2"],
        ["--apps", "x"],
    ],
)
def test_bad_values_exit_2_without_a_file(tmp_path, capsys, extra):
    out = tmp_path / "x.json"
    rc = main([*BASE, "--seed", "1", *extra, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert not out.exists()


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "--mobility" in capsys.readouterr().out


def test_module_runs_as_a_program(tmp_path):
    out = tmp_path / "p.json"
    cmd = [sys.executable, "-m", "dtasm_opt.generate", *BASE, "--seed", "2", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert files.read_instance(out).n_users == 10


def test_every_work_limit_flag_reaches_the_settings():
    """add_work_limit_options' flags are exactly cli.WORK_LIMITS, each a MethodSettings field,
    so solve, rollout and generate --set pass every one on (a new flag not listed fails)."""
    p = argparse.ArgumentParser()
    cli.add_work_limit_options(p)
    dests = {a.dest for a in p._actions if a.dest != "help"}
    assert dests == set(cli.WORK_LIMITS)
    assert dests <= {f.name for f in fields(MethodSettings)}
    args = p.parse_args(["--neighbourhood-tries", "3", "--node-limit", "7"])
    settings = MethodSettings(**cli.work_limits(args))
    assert (settings.neighbourhood_tries, settings.node_limit, settings.tree_rounds) == (3, 7, None)
