"""TD3 checkpoints: plain tensors and dicts written with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (no pickled code), plus the fingerprint of the system an
agent was trained on, so that a policy is never run on a system it has not seen.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from dtasm_opt.errors import InputError
from dtasm_opt.instance import Apps, Servers

CHECKPOINT_FORMAT = "dtasm-td3/1"


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


def save(path: str | os.PathLike, payload: dict) -> None:
    """Write atomically (temporary file, then rename), so a crash leaves the old checkpoint."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    os.replace(tmp, p)


def load(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``weights_only=True``; any failure is an :class:`InputError`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such checkpoint file")
    try:
        doc = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(f"{p}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{p}: format: expected {CHECKPOINT_FORMAT!r}")
    for key in ("config", "system", "agent", "obs_dim"):
        if key not in doc:
            raise InputError(f"{p}: {key}: missing")
    return doc
