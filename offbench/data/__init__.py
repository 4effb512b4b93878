"""Datasets: the suites and their tasks (the registrations), names and sources, loaders (D4RL hdf5, Minari).
Rebuilding data is the ``offbench.recipes`` stage (docs/architecture.md)."""
