"""Runs of methods over instances: a rollout of several methods on one stream, the windowed
hindsight bound of a stream, and benchmark instance sets. Each is resumable and writes tidy,
reproducible files (docs/design.md §5)."""
