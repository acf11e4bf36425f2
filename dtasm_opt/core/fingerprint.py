"""Digests of what a run depends on, checked before anything is resumed or reused.

- :func:`stream_fingerprint`: everything in a stream that a rollout or a bound depends on
  (a rollout state file or a bound file is only resumed on the stream it was written for).
- :func:`system_fingerprint`: what a trained policy depends on besides the per-step state
  (U, H, F, xi and the ES and application data); :func:`check_fingerprint` refuses a policy
  on another system, naming what differs.

The byte layout of both digests is part of the file formats (docs/design.md §5): changing it
would orphan every state file and checkpoint written before.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields

import numpy as np

from dtasm_opt.core.instance import Apps, Servers
from dtasm_opt.core.stream import EXOGENOUS, Stream
from dtasm_opt.errors import InputError


def stream_fingerprint(stream: Stream) -> str:
    """A SHA-256 over the stream's arrays (shape and bytes) and xi."""
    h = hashlib.sha256()
    arrays = [getattr(stream.servers, f.name) for f in fields(stream.servers)]
    arrays += [getattr(stream.apps, f.name) for f in fields(stream.apps)]
    arrays += [stream.app, stream.latency_limit_s, stream.initial_server]
    arrays += [getattr(stream, name) for name in EXOGENOUS]
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr(stream.xi_s).encode())
    return h.hexdigest()


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.float64)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def system_fingerprint(servers: Servers, apps: Apps, n_users: int, xi_s: float) -> dict:
    """What a policy depends on besides the per-step state: U, H, F, xi and the ES/app data."""
    return {
        "users": int(n_users),
        "servers": int(servers.n_servers),
        "apps": int(apps.n_apps),
        "xi_s": float(xi_s),
        "servers_sha256": _digest(
            servers.capacity_hz,
            servers.bandwidth_bps,
            servers.delay_s,
            servers.cloud_bandwidth_bps,
            servers.cloud_delay_s,
        ),
        "apps_sha256": _digest(
            apps.sf_capacity_hz,
            apps.checkpoint_share,
            apps.suspend_cycles_per_bit,
            apps.resume_cycles_per_bit,
            apps.sf_prepare_s,
        ),
    }


_LABELS = {
    "users": "number of users",
    "servers": "number of edge servers",
    "apps": "number of application kinds",
    "xi_s": "migration bound xi_s",
    "servers_sha256": "edge servers and links (capacity, bandwidth, delay)",
    "apps_sha256": "application parameters",
}


def check_fingerprint(trained: dict, actual: dict, where: str) -> None:
    """Refuse a policy trained on another system, naming what differs."""
    diff = [
        f"{_LABELS.get(k, k)} (trained {trained.get(k)!r}, here {actual[k]!r})"
        if not k.endswith("sha256")
        else _LABELS.get(k, k)
        for k in actual
        if trained.get(k) != actual[k]
    ]
    if diff:
        raise InputError(f"{where}: trained on another system; differs in: " + "; ".join(diff))
