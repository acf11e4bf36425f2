"""Where a run's rows come from, for its manifest: the commit, the package versions and the
machine (docs/design.md, "Across machines")."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "dtasm-opt",
    "numpy",
    "pyomo",
    "highspy",
    "ortools",
    "torch",
    "gymnasium",
    "ray",
    "matplotlib",
)


def machine() -> dict[str, object]:
    """The computer a run starts on (where a local run's rows come from). The engine's rows
    repeat on any x86-64 machine (docs/design.md, "Across machines"); rows made before that
    did not, and a manifest that names its machine lets a reader tell such runs apart."""
    cpu = platform.processor() or None  # on Linux often just the architecture
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"arch": platform.machine(), "cpu": cpu, "cores": os.cpu_count()}


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
