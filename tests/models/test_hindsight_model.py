"""The hindsight window model (docs/design.md §9): its relaxed C2/C3 admit everything the
simulator admits, and its Lagrangian certificate is a lower bound for ANY multipliers."""

from __future__ import annotations

import numpy as np
from tiny import small_stream

from dtasm_opt.core import simulator
from dtasm_opt.models import hindsight as hs
from dtasm_opt.solvers.exact import hindsight_bound as hb


def test_relaxed_c2_c3_admit_everything_the_simulator_admits():
    """Every user the simulator lets through rule 2 is seamless in the model, every admitted
    one is C3-admissible, from ES and cloud origins, SF active or not."""
    rng = np.random.default_rng(5)
    checked = refused = 0
    for seed in range(6):
        st = small_stream(seed, 20, 3, 3, 0.3, [0.3, 0.6, 1.2][seed % 3])
        for t in range(st.n_steps):
            d = hs.step_data(st, t)
            server = rng.integers(0, st.n_servers + 1, size=st.n_users)
            action = rng.integers(0, st.n_servers, size=st.n_users)
            out = simulator.apply(st.instance(t, server), action)
            passed = np.isin(
                out.outcome,
                [simulator.ADMITTED, simulator.REJECTED_LATENCY, simulator.REJECTED_CAPACITY],
            )
            moving = passed & (action != server)
            assert d.seamless[moving, server[moving], action[moving]].all()
            adm = out.outcome == simulator.ADMITTED
            assert d.admissible[adm, action[adm]].all()
            checked += int(moving.sum())
            refused += int((~d.seamless).sum())
    assert checked > 50 and refused > 0  # both sides of the rule were exercised


def test_lagrangian_bound_is_weak_duality():
    st = small_stream(31, 16, 3, 4, 0.1, 0.6)
    model = hs.build_window(st, 0, 4, initial_server=st.initial_server)
    h = hb._highs(model)
    h.setOptionValue("solver", "simplex")
    h.run()
    z = h.getInfo().objective_function_value * hs.COST_UNIT_BYTES
    at_opt = hs.lagrangian_bound(model, np.array(h.getSolution().row_dual))
    assert z > 0 and z - 10.0 <= at_opt <= z
    rng = np.random.default_rng(0)
    for _ in range(20):  # ANY multipliers give a lower bound
        y = rng.normal(scale=rng.choice([0.01, 1.0, 100.0]), size=model.n_rows)
        assert hs.lagrangian_bound(model, y) <= z
