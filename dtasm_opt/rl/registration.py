"""Registering the environment with Gymnasium as soon as both are loaded, without making
``import dtasm_opt`` load Gymnasium.

``import dtasm_opt`` calls :func:`register_when_gymnasium_loads`: if Gymnasium is already
imported the environment is registered at once, otherwise a one-shot import hook registers it
right after Gymnasium's own import. Either way ``gymnasium.make("dtasm_opt/DTASM-v0")`` works
in any order of imports, and the environment module itself is imported only by ``make``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

ENV_ID = "dtasm_opt/DTASM-v0"
ENTRY_POINT = "dtasm_opt.rl.env:DTASMEnv"


def register() -> None:
    """Register ``dtasm_opt/DTASM-v0`` (once)."""
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point=ENTRY_POINT)


class _AfterGymnasium(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``gymnasium`` is about to be imported it wraps the real
    loader so that :func:`register` runs right after the module has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "gymnasium":
            return None
        sys.meta_path.remove(self)  # one shot; the normal finders locate the package
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            register()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def register_when_gymnasium_loads() -> None:
    if "gymnasium" in sys.modules:
        register()
    elif not any(isinstance(f, _AfterGymnasium) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasium())
