"""Which evaluation environments the MJX backend runs (JAX-free: the CLI and ``auto`` consult it)."""

from __future__ import annotations

# Gymnasium v5 locomotion; AntMaze, Kitchen, Adroit and the point mazes stay on the host (docs/speed.md)
SUPPORTED = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5")


def supported(env_id: str | None) -> bool:
    return env_id in SUPPORTED
