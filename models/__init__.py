"""Optimisation models of the DTASM problem (per-step MILP, knapsack, multi-step bound)."""
