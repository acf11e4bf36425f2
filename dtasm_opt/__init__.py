"""dtasm-opt: dynamic task allocation and service migration in edge-cloud IoT systems.

The core (this package): instances and streams, the Table II generator, the paper's physics,
the simulator that judges every action, the method registry and the CLIs. Optimisation models
live in :mod:`dtasm_opt.models`, methods (exact, heuristic, learned) in :mod:`dtasm_opt.solvers`.
"""

__version__ = "0.1.0"
