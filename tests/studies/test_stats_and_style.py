"""Intervals and the figures' look: exact t quantiles (the table's df = 11 is 2.201, not the
next entry's 2.131), bootstrap intervals inside the data's range, one colour per method."""

from __future__ import annotations

import numpy as np
import pytest

from dtasm_opt.solvers import registry
from dtasm_opt.studies.spec import parse
from dtasm_opt.studies.stats import bootstrap_ci, mean_ci, t95
from dtasm_opt.studies.style import style

# Two-sided 95 % quantiles from a printed Student-t table (df: value).
TABLE = {1: 12.706, 2: 4.303, 5: 2.571, 10: 2.228, 11: 2.201, 19: 2.093, 29: 2.045, 60: 2.000}


@pytest.mark.parametrize("df", sorted(TABLE))
def test_t_quantiles_match_the_table(df):
    assert t95(df + 1) == pytest.approx(TABLE[df], abs=6e-4)


def test_mean_ci_uses_n_minus_1_degrees_of_freedom():
    values = [1.0, 2.0, 4.0]
    mean, half = mean_ci(values)
    assert mean == pytest.approx(7 / 3)
    assert half == pytest.approx(t95(3) * np.std(values, ddof=1) / np.sqrt(3))


def test_bootstrap_intervals_stay_inside_the_range_and_repeat():
    values = [0.0, 0.0, 9.0]  # a t-interval would reach below 0
    assert mean_ci(values)[0] - mean_ci(values)[1] < 0
    mean, lo, hi = bootstrap_ci(values)
    assert 0.0 <= lo <= mean <= hi <= 9.0
    assert bootstrap_ci(values) == (mean, lo, hi)


def spec_of(methods: list[str], tables: dict | None = None):
    return parse({"study": {"name": "x", "methods": methods, "seeds": [1], "steps": 2},
                  "method": tables or {}})  # fmt: skip


def test_a_method_has_one_colour_and_the_papers_name_in_every_figure():
    a = spec_of(["nearest", "milp", "td3"])
    b = spec_of(["td3", "danearest", "milp", "td3-paper"], {"td3-paper": {"method": "td3"}})
    for label in ("milp", "td3"):
        assert style(a, label)["color"] == style(b, label)["color"] == registry.look(label)[0]
    assert style(a, "milp")["label"] == "MILP-greedy"
    assert style(b, "td3-paper")["label"] == "TD3 (td3-paper)"
    assert style(b, "td3-paper")["linestyle"] != style(b, "td3")["linestyle"]
    assert style(a, "td3-greedy")["label"] == "TD3, greedy"


def test_every_method_has_its_own_colour_and_marker():
    """Two methods in one figure are never told apart by the legend order alone."""
    names = [e.split(":")[0] for e in registry.available_methods()] + ["hindsight-bound"]
    colours = [registry.look(n)[0] for n in names]
    assert len(set(colours)) == len(colours)
    assert registry.look("td3") == registry.look(registry.study_entry("td3").name)
