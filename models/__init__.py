"""Optimisation models of the DTASM problem: formulations only, never a solver (docs/design.md
§6). The admissible pairs, the per-step problem's numbers and its three encodings (direct
matrix, Pyomo, CP-SAT), and the multi-step hindsight model."""
