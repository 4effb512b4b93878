"""Which evaluation environments the MJX backend runs (JAX-free: the CLI and ``auto`` consult it)."""

from __future__ import annotations

from offbench.errors import OffbenchError

LOCOMOTION = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5")  # Gymnasium v5
ANTMAZE = ("AntMaze_UMaze-v4", "AntMaze_Medium-v4", "AntMaze_Large-v4")  # Gymnasium-Robotics, D4RL's evaluation
# Kitchen, Adroit, the point mazes and Walker2d-v4 stay on the host (docs/speed.md)
SUPPORTED = LOCOMOTION + ANTMAZE
# what ``--eval-backend auto`` puts on MJX (on a GPU): the tasks whose fidelity against the host was measured
# (docs/speed.md). AntMaze is ported but its success-rate check has not run yet (MJX orients the feet's friction
# pyramid differently), so it runs on MJX only when asked for (--eval-backend mjx).
AUTO = LOCOMOTION

# AntMaze's environment arguments that the MJX port reproduces: the maze (in the model it reads from the
# host environment) and the goal rules (AntMaze_*-v4's 0.45 m rules never act before the 0.5 m goal radius)
ANTMAZE_KWARGS = ("maze_map", "continuing_task", "reset_target")


def supported(env_id: str | None) -> bool:
    return env_id in SUPPORTED


def check_env_kwargs(env_id: str | None, env_kwargs: dict | None) -> None:
    """An error when the task's environment arguments change what the MJX port computes."""
    allowed = ANTMAZE_KWARGS if env_id in ANTMAZE else ()
    extra = sorted(set(env_kwargs or {}) - set(allowed))
    if extra:
        raise OffbenchError(
            f"the mjx backend runs {env_id} with Gymnasium's defaults, not with "
            f"{ {k: env_kwargs[k] for k in extra} }; use --eval-backend host"
        )
