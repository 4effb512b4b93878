"""Sweeps: many runs planned from one YAML file, run by local or Ray launchers."""
