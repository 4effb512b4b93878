"""Sweep files (YAML), installed as ``offbench.configs.sweeps``."""
