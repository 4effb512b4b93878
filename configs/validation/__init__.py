"""Validation protocols (YAML), installed as ``offbench.configs.validation``."""
