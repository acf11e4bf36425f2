"""Every kind of bad input is refused with one `error:` line and exit 2: no traceback, no output.

Hand-written cases for each kind of defect (docs/design.md §5), then a seeded fuzz over many
random mutations of a valid instance file.
"""

from __future__ import annotations

import copy
import gzip
import json

import numpy as np
import pytest

from dtasm_opt import generate, rollout, solve
from dtasm_opt.core import files, simulator
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.experiments.rollout import state_path

SMALL = Scenario(users=6, servers=3, apps=3)


def valid_doc() -> dict:
    return generate_instance(SMALL, seed=2).to_dict()


def expect_refused(capsys, rc: int, out_path, *needles: str) -> str:
    cap = capsys.readouterr()
    assert rc == 2, cap.err
    assert cap.err.startswith("error: ") and cap.err.count("\n") == 1, cap.err
    assert "Traceback" not in cap.err
    assert not out_path.exists()
    for needle in needles:
        assert needle in cap.err, cap.err
    return cap.err


def solve_file(path, out) -> int:
    return solve.main([str(path), "--method", "nearest", "--out", str(out)])


def write_doc(tmp_path, doc) -> object:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))  # Python writes NaN / Infinity literals as JSON accepts
    return path


# --- files that are not JSON at all ------------------------------------------------------


def test_missing_file(tmp_path, capsys):
    out = tmp_path / "sol.json"
    expect_refused(capsys, solve_file(tmp_path / "nope.json", out), out, "no such file")


def test_directory(tmp_path, capsys):
    out = tmp_path / "sol.json"
    expect_refused(capsys, solve_file(tmp_path, out), out, "directory")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("text.json", b"hello, world"),
        ("empty.json", b""),
        ("binary.json", bytes(range(256))),
        ("garbage.json.gz", b"\x1f\x8bnot really gzip"),
        ("plain.json.gz", b'{"format": "dtasm-instance/1"}'),
    ],
)
def test_not_json(tmp_path, capsys, name, data):
    path, out = tmp_path / name, tmp_path / "sol.json"
    path.write_bytes(data)
    expect_refused(capsys, solve_file(path, out), out, name)


def test_truncated_json_and_truncated_gzip(tmp_path, capsys):
    text = json.dumps(valid_doc()).encode()
    out = tmp_path / "sol.json"
    (tmp_path / "cut.json").write_bytes(text[: len(text) // 2])
    expect_refused(capsys, solve_file(tmp_path / "cut.json", out), out, "not valid JSON")
    packed = gzip.compress(text)
    (tmp_path / "cut.json.gz").write_bytes(packed[: len(packed) // 2])
    expect_refused(capsys, solve_file(tmp_path / "cut.json.gz", out), out, "cut.json.gz")


# --- JSON that breaks the format ---------------------------------------------------------


def mutate(path: tuple, value=None, delete: bool = False) -> dict:
    doc = valid_doc()
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


CASES = {
    "wrong format tag": (mutate(("format",), "dtasm-instance/9"), "format"),
    "stream tag on an instance": (mutate(("format",), "dtasm-stream/1"), "steps: missing"),
    "missing format tag": (mutate(("format",), delete=True), "format"),
    "not an object": (["format", "dtasm-instance/1"], "format"),
    "missing servers": (mutate(("servers",), delete=True), "servers: missing"),
    "missing apps": (mutate(("apps",), delete=True), "apps: missing"),
    "missing users": (mutate(("users",), delete=True), "users: missing"),
    "missing xi": (mutate(("xi_s",), delete=True), "xi_s: missing"),
    "missing servers field": (
        mutate(("servers", "delay_s"), delete=True),
        "servers.delay_s: missing",
    ),
    "missing apps field": (
        mutate(("apps", "sf_prepare_s"), delete=True),
        "apps.sf_prepare_s: missing",
    ),
    "missing users field": (mutate(("users", "server"), delete=True), "users.server: missing"),
    "section not an object": (mutate(("apps",), [1, 2]), "apps: expected a JSON object"),
    "wrong length": (mutate(("users", "task_bits"), [1e6] * 5), "users.task_bits: length 5"),
    "wrong matrix size": (mutate(("servers", "delay_s"), [[0.0] * 3] * 2), "servers.delay_s"),
    "ragged matrix": (
        mutate(("servers", "bandwidth_bps"), [[0, 1e7, 1e7], [1e7, 0], [1e7, 1e7, 0]]),
        "servers.bandwidth_bps",
    ),
    "string": (mutate(("users", "cycles_per_bit"), "many"), "users.cycles_per_bit"),
    "string entry": (mutate(("users", "ran"), [0, 1, "2", 0, 1, 2]), "users.ran"),
    "bool entry": (mutate(("users", "app"), [0, 1, True, 0, 1, 2]), "users.app"),
    "bool scalar": (mutate(("xi_s",), True), "xi_s"),
    "nested object": (mutate(("apps", "checkpoint_share"), [{"v": 0.2}] * 3), "checkpoint_share"),
    "null entry": (mutate(("users", "result_bits"), [None] * 6), "users.result_bits"),
    "name not a string": (mutate(("name",), 7), "name"),
    "negative number": (mutate(("servers", "capacity_hz"), [6e10, -1.0, 6e10]), "capacity_hz"),
    "negative xi": (mutate(("xi_s",), -0.1), "xi_s"),
    "NaN literal": (mutate(("xi_s",), float("nan")), "xi_s"),
    "NaN entry": (mutate(("users", "task_bits"), [float("nan")] * 6), "users.task_bits"),
    "Infinity entry": (
        mutate(("servers", "cloud_delay_s"), [0.01, float("inf"), 0.01]),
        "cloud_delay_s",
    ),
    "-Infinity entry": (mutate(("users", "context_bits"), [-float("inf")] * 6), "context_bits"),
    "non-integer index": (mutate(("users", "server"), [0, 1, 2, 0, 1, 1.5]), "users.server"),
    "ran >= H": (mutate(("users", "ran"), [0, 1, 2, 3, 0, 0]), "users.ran[3]"),
    "server > H": (mutate(("users", "server"), [0, 1, 2, 3, 4, 0]), "users.server[4]"),
    "negative index": (mutate(("users", "server"), [0, -1, 2, 3, 0, 0]), "users.server[1]"),
    "app >= F": (mutate(("users", "app"), [0, 3, 0, 0, 0, 0]), "users.app[1]"),
    "off-diagonal zero bandwidth": (
        mutate(("servers", "bandwidth_bps"), [[0, 2e7, 3e7], [2e7, 0, 0], [3e7, 0, 0]]),
        "servers.bandwidth_bps[1,2]",
    ),
    "checkpoint share above 1": (mutate(("apps", "checkpoint_share"), [0.2, 1.5, 0.2]), "share"),
    "zero latency limit": (mutate(("users", "latency_limit_s"), [0.0] * 6), "latency_limit_s"),
    "meta not an object": (mutate(("meta",), [1]), "meta"),
    "index beyond int64": (mutate(("users", "app"), [1e300] * 6), "users.app: integer out"),
    "volumes overflowing float64": (mutate(("users", "task_bits"), [1e308] * 6), "not finite"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_instance_is_refused_naming_the_field(tmp_path, capsys, case):
    doc, needle = CASES[case]
    out = tmp_path / "sol.json"
    expect_refused(capsys, solve_file(write_doc(tmp_path, doc), out), out, needle)


def test_unwritable_output(tmp_path, capsys):
    inst = write_doc(tmp_path, valid_doc())
    for out in (tmp_path / "no" / "such" / "sol.json", tmp_path):
        rc = solve.main([str(inst), "--method", "nearest", "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "no").exists()


def test_rollout_refuses_bad_streams_before_making_files(tmp_path, capsys):
    stream = generate_stream(SMALL, seed=1, steps=3).to_dict()
    stream["steps"]["ran"][2][1] = 3  # ran >= H at step 2
    bad = write_doc(tmp_path, stream)
    out = tmp_path / "r.csv"
    rc = rollout.main([str(bad), "--methods", "nearest", "--out", str(out), "--quiet"])
    expect_refused(capsys, rc, out, "steps.ran[2,1]")
    assert not state_path(out).exists()
    inst = write_doc(tmp_path, valid_doc())  # an instance is not a stream
    rc = rollout.main([str(inst), "--methods", "nearest", "--out", str(out), "--quiet"])
    expect_refused(capsys, rc, out, "format")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--methods", "nearest"],
        ["--methods", "", "--out", "R"],
        ["--methods", "nearest,nearest", "--out", "R"],
        ["--methods", "nearest", "--out", "R", "--steps", "0"],
        ["--methods", "nearest", "--out", "R", "--seed", "-1"],
        ["--methods", "nearest", "--out", "R", "--time-limit", "nan"],
        ["--methods", "nearest", "--out", "R", "--frobnicate"],
    ],
)
def test_rollout_bad_cli_values(tmp_path, capsys, args):
    stream = tmp_path / "s.json"
    files.write_json(stream, generate_stream(SMALL, seed=1, steps=2).to_dict())
    out = tmp_path / "R"
    args = [str(out) if a == "R" else a for a in args]
    expect_refused(capsys, rollout.main([str(stream), *args]), out)


def test_generate_unknown_flag_and_missing_out(tmp_path, capsys):
    out = tmp_path / "x.json"
    rc = generate.main(["--users", "3", "--servers", "2", "--seed", "1", "--colour", "red"])
    expect_refused(capsys, rc, out)
    expect_refused(capsys, generate.main(["--users", "3", "--servers", "2", "--seed", "1"]), out)


# --- fuzz --------------------------------------------------------------------------------


def _nodes(doc, path=()):
    """Every (path, value) in a JSON document, containers included."""
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, (*path, i))


def _random_value(rng: np.random.Generator, avoid: type):
    pool = [
        "text",
        True,
        None,
        {"x": 1},
        [1, 2],
        [],
        float(rng.normal() * 1e9),
        int(rng.integers(-5, 10)),
        float("nan"),
        float("inf"),
        10**30,
    ]
    pool = [v for v in pool if type(v) is not avoid]
    return copy.deepcopy(pool[rng.integers(len(pool))])


def _set(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def mutate_randomly(rng: np.random.Generator, doc: dict) -> dict:
    """One random defect: delete a key, retype a value, cut a list, flip a sign, insert NaN."""
    doc = copy.deepcopy(doc)
    nodes = [(p, v) for p, v in _nodes(doc) if p]
    path, value = nodes[rng.integers(len(nodes))]
    op = rng.integers(5)
    if op == 0:
        dicts = [(p, v) for p, v in _nodes(doc) if isinstance(v, dict) and v]
        p, d = dicts[rng.integers(len(dicts))]
        del d[list(d)[rng.integers(len(d))]]
    elif op == 1:
        _set(doc, path, _random_value(rng, type(value)))
    elif op == 2:
        lists = [(p, v) for p, v in _nodes(doc) if isinstance(v, list) and v]
        p, lst = lists[rng.integers(len(lists))]
        del lst[rng.integers(len(lst)) :]
    elif op == 3:
        numbers = [(p, v) for p, v in nodes if isinstance(v, (int, float)) and v is not True]
        p, v = numbers[rng.integers(len(numbers))]
        _set(doc, p, -v if v else -1)
    else:
        numbers = [(p, v) for p, v in nodes if isinstance(v, (int, float))]
        p, _ = numbers[rng.integers(len(numbers))]
        _set(doc, p, [float("nan"), float("inf"), -float("inf")][rng.integers(3)])
    return doc


def test_fuzzed_instances_never_crash(tmp_path, capsys):
    rng = np.random.default_rng(20261107)
    base = valid_doc()
    path, out = tmp_path / "fuzz.json", tmp_path / "sol.json"
    outcomes = {0: 0, 2: 0}
    for case in range(400):
        doc = base
        for _ in range(rng.integers(1, 4)):
            doc = mutate_randomly(rng, doc)
        text = json.dumps(doc).encode()
        if rng.random() < 0.15:  # a file cut at a random byte
            text = text[: rng.integers(len(text))]
        path.write_bytes(text)
        rc = solve_file(path, out)
        err = capsys.readouterr().err
        assert "Traceback" not in err, (case, err)
        assert rc in (0, 2), (case, rc, err)
        outcomes[rc] += 1
        if rc == 2:
            assert err.startswith("error: ") and err.count("\n") == 1, (case, err)
            assert not out.exists(), case
        else:
            inst = files.read_instance(path)
            sol = files.read_json(out)
            final = simulator.apply(inst, np.array(sol["action"])).final_server
            assert sol["final_server"] == final.tolist(), case
            out.unlink()
    # Both branches are exercised: some mutations keep the file valid (e.g. a sign flip of
    # a zero diagonal entry), most break it.
    assert outcomes[2] > 200 and outcomes[0] > 0, outcomes
