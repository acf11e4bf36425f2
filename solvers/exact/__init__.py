"""Exact methods: the per-step MILP by HiGHS (direct matrices or Pyomo) behind a lexicographic
driver, CP-SAT, and the certified hindsight bound of a stream."""
