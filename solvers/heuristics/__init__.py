"""The paper's baselines (Section V, docs/design.md §7), one small policy per file.

Each maps the current state to an action; the simulator judges it. Random choices come from
the method's own Generator (``method_rng``), so methods never share a random stream.
"""
