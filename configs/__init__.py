"""Hyperparameters per algorithm and suite (YAML), installed as package data ``offbench.configs``."""
