"""Rebuilding offline datasets locally with the D4RL recipes (see ``offbench data build``)."""
