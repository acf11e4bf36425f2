"""The methods: exact solvers (``exact/``), the paper's baselines (``heuristics/``), the TD3
agent (``td3/``) and the registry that names them all (``registry.py``)."""
