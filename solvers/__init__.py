"""Methods: exact drivers (HiGHS, CP-SAT), the paper's baselines and the TD3 agent."""
