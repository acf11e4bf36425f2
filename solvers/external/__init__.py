"""Policies from outside the toolkit as methods: any Python callable (``py:``) and
Stable-Baselines3 models trained on the environment (``sb3:``)."""
