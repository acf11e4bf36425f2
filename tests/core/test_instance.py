"""The instance and stream model (docs/design.md §1, §4, §5): round trips, read-only arrays and
one clear message naming the field for every malformed input."""

from __future__ import annotations

import copy
import gzip
import json
from dataclasses import fields

import numpy as np
import pytest

from dtasm_opt.core import files
from dtasm_opt.core.generator import Scenario, generate_instance, generate_stream
from dtasm_opt.core.instance import Instance
from dtasm_opt.core.stream import Stream
from dtasm_opt.errors import InputError


@pytest.fixture(scope="module")
def inst():
    inst = generate_instance(Scenario(users=30, servers=3), seed=2)
    # put some users in the cloud so that index H round-trips too
    server = inst.users.server.copy()
    server[:5] = inst.cloud
    return inst.with_server(server)


@pytest.fixture(scope="module")
def stream():
    return generate_stream(Scenario(users=20, servers=3, mobility="markov"), seed=5, steps=4)


def _all_arrays(obj):
    """(name, array) of an Instance's or Stream's arrays, nested sections included."""
    out = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            out.append((f.name, value))
        elif hasattr(value, "__dataclass_fields__"):
            out += [(f"{f.name}.{n}", a) for n, a in _all_arrays(value)]
    return out


def _assert_same(a, b):
    left, right = _all_arrays(a), _all_arrays(b)
    assert [n for n, _ in left] == [n for n, _ in right]
    for (name, x), (_, y) in zip(left, right, strict=True):
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y), name  # exact, bit for bit
    assert (a.xi_s, a.name, a.meta) == (b.xi_s, b.name, b.meta)


def test_instance_round_trip_dict_and_json_text(inst):
    doc = inst.to_dict()
    assert doc["format"] == "dtasm-instance/1"
    _assert_same(inst, Instance.from_dict(doc))
    _assert_same(inst, Instance.from_dict(json.loads(json.dumps(doc))))


def test_stream_round_trip(stream):
    doc = stream.to_dict()
    assert doc["format"] == "dtasm-stream/1"
    _assert_same(stream, Stream.from_dict(json.loads(json.dumps(doc))))


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_round_trip_through_files(tmp_path, inst, stream, suffix):
    ipath, spath = tmp_path / f"i{suffix}", tmp_path / f"s{suffix}"
    files.write_json(ipath, inst.to_dict())
    files.write_json(spath, stream.to_dict())
    _assert_same(inst, files.read_instance(ipath))
    _assert_same(stream, files.read_stream(spath))
    _assert_same(inst, files.read_instance_or_stream(ipath))
    _assert_same(stream, files.read_instance_or_stream(spath))
    raw = ipath.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == suffix.endswith(".gz")
    if suffix.endswith(".gz"):
        assert json.loads(gzip.decompress(raw))["format"] == "dtasm-instance/1"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_stream_step_is_an_instance(stream):
    server = np.full(stream.n_users, stream.n_servers)
    step = stream.instance(2, server)
    assert np.array_equal(step.users.task_bits, stream.task_bits[2])
    assert np.array_equal(step.users.server, server)
    assert np.array_equal(stream.instance(6, server).users.ran, stream.ran[2])  # wraps
    with pytest.raises(ValueError):
        stream.instance(1)  # the servers before step 1 depend on the policy


def test_arrays_are_read_only(inst, stream):
    for obj in (inst, stream):
        for name, arr in _all_arrays(obj):
            assert not arr.flags.writeable, name
            with pytest.raises(ValueError):
                arr[(0,) * arr.ndim] = 1


def test_arrays_are_copied_from_caller_buffers(inst):
    server = inst.users.server.copy()
    other = inst.with_server(server)
    server[0] = 0 if other.users.server[0] else 1
    assert other.users.server[0] != server[0]


def _set(path: str, value):
    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value(node[last]) if callable(value) else value

    return mutate


def _delete(path: str):
    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        del node[last]

    return mutate


def _entry(path: str, index, value):
    def change(arr):
        arr = copy.deepcopy(arr)
        if isinstance(index, tuple):
            arr[index[0]][index[1]] = value
        else:
            arr[index] = value
        return arr

    return _set(path, change)


NAN, INF = float("nan"), float("inf")
INSTANCE_BAD = [
    (_delete("format"), "format"),
    (_set("format", "dtasm-instance/2"), "format"),
    (_set("format", "dtasm-stream/1"), "format"),
    (_delete("servers"), "servers"),
    (_set("servers", [1, 2]), "servers"),
    (_delete("servers.capacity_hz"), "servers.capacity_hz"),
    (_set("servers.capacity_hz", []), "servers.capacity_hz"),
    (_set("servers.capacity_hz", "fast"), "servers.capacity_hz"),
    (_entry("servers.capacity_hz", 0, NAN), "servers.capacity_hz"),
    (_entry("servers.capacity_hz", 1, INF), "servers.capacity_hz"),
    (_entry("servers.capacity_hz", 0, -1.0), "servers.capacity_hz"),
    (_entry("servers.capacity_hz", 0, True), "servers.capacity_hz"),
    (_entry("servers.capacity_hz", 0, "1e9"), "servers.capacity_hz"),
    (_set("servers.bandwidth_bps", lambda m: m[:-1]), "servers.bandwidth_bps"),
    (_set("servers.bandwidth_bps", lambda m: [m[0], m[1][:-1], m[2]]), "servers.bandwidth_bps"),
    (_entry("servers.bandwidth_bps", (0, 1), 0.0), "servers.bandwidth_bps"),
    (_entry("servers.bandwidth_bps", (1, 1), -1.0), "servers.bandwidth_bps"),
    (_entry("servers.delay_s", (0, 2), -1e-3), "servers.delay_s"),
    (_set("servers.cloud_bandwidth_bps", lambda a: a + [1e7]), "servers.cloud_bandwidth_bps"),
    (_entry("servers.cloud_bandwidth_bps", 0, 0.0), "servers.cloud_bandwidth_bps"),
    (_entry("servers.cloud_delay_s", 2, NAN), "servers.cloud_delay_s"),
    (_delete("apps"), "apps"),
    (_delete("apps.sf_prepare_s"), "apps.sf_prepare_s"),
    (_entry("apps.sf_capacity_hz", 0, 0.0), "apps.sf_capacity_hz"),
    (_entry("apps.checkpoint_share", 0, 1.5), "apps.checkpoint_share"),
    (_entry("apps.checkpoint_share", 0, 0.0), "apps.checkpoint_share"),
    (_entry("apps.suspend_cycles_per_bit", 0, -0.4), "apps.suspend_cycles_per_bit"),
    (_set("apps.resume_cycles_per_bit", lambda a: a[:-1]), "apps.resume_cycles_per_bit"),
    (_entry("apps.sf_prepare_s", 3, INF), "apps.sf_prepare_s"),
    (_delete("users"), "users"),
    (_delete("users.server"), "users.server"),
    (_entry("users.app", 0, 10), "users.app"),  # F = 10 kinds: 0..9
    (_entry("users.app", 0, -1), "users.app"),
    (_entry("users.app", 0, 1.5), "users.app"),
    (_entry("users.ran", 0, 3), "users.ran"),  # H = 3: the cloud is no RAN
    (_entry("users.server", 0, 4), "users.server"),  # 0..H
    (_entry("users.server", 0, 0.5), "users.server"),
    (_set("users.task_bits", lambda a: a[:-1]), "users.task_bits"),
    (_entry("users.result_bits", 0, -1.0), "users.result_bits"),
    (_entry("users.context_bits", 0, NAN), "users.context_bits"),
    (_entry("users.cycles_per_bit", 0, [1.0]), "users.cycles_per_bit"),
    (_entry("users.latency_limit_s", 0, 0.0), "users.latency_limit_s"),
    (_set("users.latency_limit_s", None), "users.latency_limit_s"),
    (_delete("xi_s"), "xi_s"),
    (_set("xi_s", "1.2"), "xi_s"),
    (_set("xi_s", -0.1), "xi_s"),
    (_set("xi_s", True), "xi_s"),
    (_set("name", 7), "name"),
    (_set("meta", [1]), "meta"),
]


@pytest.mark.parametrize(("mutate", "field"), INSTANCE_BAD)
def test_instance_validation_names_the_field(inst, mutate, field):
    doc = json.loads(json.dumps(inst.to_dict()))
    mutate(doc)
    with pytest.raises(InputError) as err:
        Instance.from_dict(doc)
    message = str(err.value)
    assert message.startswith(field), message
    assert "\n" not in message


STREAM_BAD = [
    (_set("format", "dtasm-instance/1"), "format"),
    (_delete("steps"), "steps"),
    (_delete("steps.context_bits"), "steps.context_bits"),
    (_entry("steps.ran", (1, 0), 3), "steps.ran"),
    (_set("steps.ran", []), "steps.ran"),
    (_set("steps.task_bits", lambda a: a[:-1]), "steps.task_bits"),
    (_entry("steps.cycles_per_bit", (0, 0), -5.0), "steps.cycles_per_bit"),
    (_entry("users.initial_server", 0, 4), "users.initial_server"),
    (_delete("users.app"), "users.app"),
    (_set("users.latency_limit_s", lambda a: a[:-1]), "users.latency_limit_s"),
]


@pytest.mark.parametrize(("mutate", "field"), STREAM_BAD)
def test_stream_validation_names_the_field(stream, mutate, field):
    doc = json.loads(json.dumps(stream.to_dict()))
    mutate(doc)
    with pytest.raises(InputError) as err:
        Stream.from_dict(doc)
    assert str(err.value).startswith(field), str(err.value)


@pytest.mark.parametrize("doc", [[], "text", 3, None])
def test_not_an_object(doc):
    with pytest.raises(InputError, match="document"):
        Instance.from_dict(doc)


def test_file_errors_name_the_file(tmp_path, inst):
    missing = tmp_path / "nope.json"
    with pytest.raises(InputError, match="nope.json"):
        files.read_instance(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        files.read_instance(bad)
    gz = tmp_path / "bad.json.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="bad.json.gz"):
        files.read_instance(gz)
    doc = inst.to_dict()
    del doc["users"]["ran"]
    path = tmp_path / "field.json"
    files.write_json(path, doc)
    with pytest.raises(InputError, match=r"field.json: users\.ran: missing"):
        files.read_instance(path)
    with pytest.raises(InputError, match="format"):
        files.read_stream(tmp_path / "field.json")
