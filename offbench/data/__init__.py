"""Stage 1: datasets. Loaders (D4RL hdf5, Minari), suites and their tasks, sources, and rebuild recipes."""
