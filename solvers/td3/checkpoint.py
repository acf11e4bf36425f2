"""TD3 checkpoints (``dtasm-td3/1``): plain tensors and dicts written with ``torch.save`` and
read back with ``torch.load(weights_only=True)``, so loading never runs pickled code. Each
records the system its agent was trained on
(:func:`~dtasm_opt.core.fingerprint.system_fingerprint`), so that a policy is never run on a
system it has not seen.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dtasm_opt.core.files import atomic_write
from dtasm_opt.errors import InputError

CHECKPOINT_FORMAT = "dtasm-td3/1"
# What every checkpoint (last.pt, policy.pt) holds, checked before any of it is used.
REQUIRED = {"config": dict, "system": dict, "agent": dict, "obs_dim": int}
SYSTEM_KEYS = ("users", "servers", "apps", "xi_s", "servers_sha256", "apps_sha256")


def save(path: str | os.PathLike, payload: dict) -> None:
    """Write atomically (temporary file, then rename), so a crash leaves the old checkpoint;
    a failed write (a full disk: torch raises RuntimeError) leaves no temporary file."""
    try:
        atomic_write(path, lambda fh: torch.save({"format": CHECKPOINT_FORMAT, **payload}, fh))
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot write the checkpoint ({reason})") from None


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
    for key, kind in REQUIRED.items():
        if key not in doc:
            raise InputError(f"{p}: {key}: missing")
        if not isinstance(doc[key], kind) or isinstance(doc[key], bool):
            raise InputError(f"{p}: {key}: expected {kind.__name__}")
    for key in SYSTEM_KEYS:
        if key not in doc["system"]:
            raise InputError(f"{p}: system.{key}: missing")
    if not isinstance(doc["agent"].get("actor"), dict):
        raise InputError(f"{p}: agent.actor: missing")
    return doc
