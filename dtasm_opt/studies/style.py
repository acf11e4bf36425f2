"""One look for every figure: the paper's method names, one colour and marker per method,
the same in every figure of every study, and the axis labels with their units."""

from __future__ import annotations

from dtasm_opt.solvers import registry
from dtasm_opt.studies.cells import GREEDY_SUFFIX
from dtasm_opt.studies.spec import Spec

# Colour and marker come from the registry entry: a method looks the same in every figure.
VARIANT_DASHES = ("-", "--", ":", "-.")  # a second label of the same method: another line
AXIS_LABELS = {
    "users": "users U",
    "servers": "edge servers H",
    "apps": "application kinds F",
    "xi": "seamless-migration bound ξ (s)",
    "stay_prob": "probability p of keeping the RAN",
    "gamma_shape": "RAN popularity shape k",
    "mobility": "mobility",
    "size": "instance (users U × edge servers H)",
    "discount": "discount factor γ",
}


def base_name(spec: Spec, label: str) -> tuple[str, bool]:
    """(registry name of a study label, whether it is a trained agent's greedy rollout)."""
    greedy = label.endswith(GREEDY_SUFFIX) and not any(m.label == label for m in spec.methods)
    core = label.removesuffix(GREEDY_SUFFIX) if greedy else label
    method = next((m for m in spec.methods if m.label == core), None)
    name = method.name if method is not None else core
    return name.split(":", 1)[0], greedy


def style(spec: Spec, label: str) -> dict:
    """Matplotlib keywords for one study label: colour, marker, line style and display name."""
    name, greedy = base_name(spec, label)
    same = [m.label for m in spec.methods if m.name.split(":", 1)[0] == name]
    variant = same.index(label.removesuffix(GREEDY_SUFFIX)) if label.removesuffix(
        GREEDY_SUFFIX) in same else 0  # fmt: skip
    shown = registry.label(name)
    if label.removesuffix(GREEDY_SUFFIX) not in (name, shown) and len(same) > 1:
        shown = f"{shown} ({label.removesuffix(GREEDY_SUFFIX)})"
    if greedy:
        shown += ", greedy"
    colour, marker = registry.look(name)
    return {
        "color": colour,
        "marker": marker,
        "linestyle": VARIANT_DASHES[variant % len(VARIANT_DASHES)],
        "label": shown,
    }


def axis_label(axis: str | None) -> str:
    return AXIS_LABELS.get(axis or "", axis or "")
