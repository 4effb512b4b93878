"""The run as a value: what identifies a run (config, hash, variant, dataset, run and checkpoint directories)."""
