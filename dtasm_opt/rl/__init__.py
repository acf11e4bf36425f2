"""Reinforcement-learning plumbing: the Gymnasium environment over the simulator, the
observation layout (state (17)) and the action helpers that agents share."""
