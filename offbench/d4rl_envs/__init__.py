"""D4RL's own evaluation tasks as Gymnasium environments on modern MuJoCo, registered as ``D4RL-*``.

They evaluate the original D4RL hdf5 files (``Task.eval_env`` picks them for data whose loader metadata says
``source: d4rl-hdf5``), so that a record's env block names the D4RL task it was evaluated on and scores are
normalised with D4RL's reference returns on D4RL's task. Minari-hosted and rebuilt data keep the Gymnasium /
Gymnasium-Robotics environments they were collected in.

* ``D4RL-AntMaze-{UMaze,Medium,Large}-v2``: :mod:`offbench.d4rl_envs.antmaze` (D4RL's ant, maze frame, goal,
  sparse reward, 0.5 m success ending the episode; 700 / 1000 steps).
* ``D4RL-AdroitHand{Door,Hammer,Pen,Relocate}-v1``: :mod:`offbench.d4rl_envs.adroit` (D4RL's rewards).
* ``D4RL-Kitchen-{Complete,Partial,Mixed}-v0``: :mod:`offbench.d4rl_envs.kitchen` (D4RL's 60-d observation).
* ``D4RL-{Hopper,HalfCheetah,Walker2d}-v2``: D4RL's -v2 locomotion data was collected in gym's v3 models
  (mujoco-py); Gymnasium's v4 environments are those models on the ``mujoco`` bindings (gymnasium
  envs/mujoco/hopper_v4.py etc.), with gym's 1000-step limit.
"""

from __future__ import annotations

ANTMAZE_IDS = {"umaze": "D4RL-AntMaze-UMaze-v2", "medium": "D4RL-AntMaze-Medium-v2", "large": "D4RL-AntMaze-Large-v2"}
ADROIT_IDS = {t: f"D4RL-AdroitHand{t.capitalize()}-v1" for t in ("door", "hammer", "pen", "relocate")}
KITCHEN_IDS = {d: f"D4RL-Kitchen-{d.capitalize()}-v0" for d in ("complete", "partial", "mixed")}
LOCOMOTION_IDS = {
    "hopper": ("D4RL-Hopper-v2", "gymnasium.envs.mujoco.hopper_v4:HopperEnv"),
    "halfcheetah": ("D4RL-HalfCheetah-v2", "gymnasium.envs.mujoco.half_cheetah_v4:HalfCheetahEnv"),
    "walker2d": ("D4RL-Walker2d-v2", "gymnasium.envs.mujoco.walker2d_v4:Walker2dEnv"),
}
LOCOMOTION_STEPS = 1000  # gym/envs/__init__.py (Hopper-v3 etc.: max_episode_steps=1000); D4RL -v2 registrations

_DONE = False


def register() -> None:
    """Register every ``D4RL-*`` id with Gymnasium (idempotent)."""
    global _DONE
    if _DONE:
        return
    import gymnasium as gym

    from offbench.d4rl_envs import adroit, kitchen, mazes

    for maze, env_id in ANTMAZE_IDS.items():
        gym.register(
            env_id,
            entry_point="offbench.d4rl_envs.antmaze:D4RLAntMazeEnv",
            max_episode_steps=mazes.MAX_EPISODE_STEPS[maze],
            kwargs={"maze": maze},
        )
    for task, env_id in ADROIT_IDS.items():
        gym.register(
            env_id,
            entry_point="offbench.d4rl_envs.adroit:make",
            max_episode_steps=adroit.MAX_EPISODE_STEPS[task],
            kwargs={"task": task},
        )
    for dataset, env_id in KITCHEN_IDS.items():
        gym.register(
            env_id,
            entry_point="offbench.d4rl_envs.kitchen:make",
            max_episode_steps=kitchen.MAX_EPISODE_STEPS,
            kwargs={"dataset": dataset},
        )
    for env_id, entry in LOCOMOTION_IDS.values():
        gym.register(env_id, entry_point=entry, max_episode_steps=LOCOMOTION_STEPS)
    _DONE = True
