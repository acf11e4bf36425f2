"""The domain core: data, physics, the simulator that judges every action, records and files.

Nothing here imports another part of the project (only :mod:`dtasm_opt.errors`): models,
solvers, the RL environment, experiments and command lines all build on this package.
"""
