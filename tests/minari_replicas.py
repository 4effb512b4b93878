"""Small, faithful replicas of the datasets Minari hosts, made with Minari's own API (``minari.DataCollector`` and
``DataCollector.create_dataset``) as Farama's minari-dataset-generation-scripts make them: the same env ids,
env kwargs, ``eval_env``, step-data callbacks (``infos``) and metadata; only the behaviour policy (random or a
cell-to-cell controller instead of the scripts' SAC / QIteration experts) and the size (a few short episodes)
differ. Each builder writes into the current ``$MINARI_DATASETS_PATH``.

References (Farama-Foundation/minari-dataset-generation-scripts):
* AntMaze: ``scripts/antmaze/create_antmaze_dataset.py`` (commit f0e60c1): ``AntMaze_UMaze-v4`` with the
  collection map G at (1, 1), R at (3, 1), ``continuing_task=True, reset_target=False``; ``eval_env`` a deepcopy of
  the env spec with ``maze_map = EVAL_ENV_MAPS["umaze"]`` (R at (1, 3), G at (3, 3): the mirrored maze of Minari
  issues #301/#304); infos ``success``, ``qpos``, ``qvel``, ``goal``; ``algorithm_name="QIteration+SAC"``.
* PointMaze: ``scripts/pointmaze/create_pointmaze_dataset.py`` (commit fb65edb): ``PointMaze_UMaze-v3`` with
  ``continuing_task=True, reset_target=True`` (a new goal each time one is reached: Minari issue #265), episodes
  truncated at every success by the callback; ``eval_env`` = ``gym.make(id, maze_map=EVAL_ENV_MAPS["umaze"]
  (G at (1, 1)), continuing_task=True, reset_target=False)``.
* MuJoCo: ``scripts/mujoco/create_dataset.py``: ``<Env>-v5`` with ``env.spec.kwargs = {}``, ``record_infos=False``,
  no ``eval_env`` (Minari then stores the env spec as ``eval_env_spec``), ``algorithm_name="sb3/SAC"``,
  ``requirements``, reference returns in the metadata.
* Adroit door: ``scripts/adroit/recreate_adroit_door.py``: ``AdroitHandDoor-v1`` with ``max_episode_steps=300``
  (human), ``record_infos=True`` with the env state in the infos, no ``eval_env``, no reference returns.
* Kitchen: ``scripts/kitchen/create_franka_dataset.py`` (see :func:`kitchen_mixed`).
"""

from __future__ import annotations

import copy
from collections import deque

import gymnasium as gym
import numpy as np

R, G = "r", "g"
PERMALINK = "https://github.com/Farama-Foundation/minari-dataset-generation-scripts"
ANTMAZE_COLLECT_UMAZE = [[1, 1, 1, 1, 1], [1, G, 0, 0, 1], [1, 1, 1, 0, 1], [1, R, 0, 0, 1], [1, 1, 1, 1, 1]]
ANTMAZE_EVAL_UMAZE = [[1, 1, 1, 1, 1], [1, 0, 0, R, 1], [1, 0, 1, 1, 1], [1, 0, 0, G, 1], [1, 1, 1, 1, 1]]
POINTMAZE_EVAL_UMAZE = [[1, 1, 1, 1, 1], [1, G, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]


def _make(env_id, **kwargs):
    import gymnasium_robotics

    from offbench.envs import drop_maze_xml

    gym.register_envs(gymnasium_robotics)
    return drop_maze_xml(gym.make(env_id, **kwargs))  # no maze model file left in the temp folder


def _create(collector, **kwargs):
    """``collector.create_dataset``; Minari makes the eval env from its spec there and keeps its maze model file."""
    from offbench.envs import maze_files_private

    with maze_files_private():
        return collector.create_dataset(**kwargs)


def _callback(extra):
    """A ``StepDataCallback`` adding ``extra(env, obs)`` to the infos (the scripts' state callbacks; Minari 0.5's
    step keys are ``info`` / ``truncated`` where the scripts, written for Minari 0.4, say ``infos`` / ``truncations``)."""
    from minari import StepDataCallback

    class Callback(StepDataCallback):
        def __call__(self, env, obs, info, action=None, rew=None, terminated=None, truncated=None):
            step = super().__call__(env, obs, info, action, rew, terminated, truncated)
            return extra(env, obs, step)

    return Callback


def _antmaze_infos(env, obs, step):  # create_antmaze_dataset.py AntMazeStepDataCallback
    step["info"] = {"success": step["info"]["success"]}
    step["info"]["qpos"] = np.concatenate([obs["achieved_goal"], obs["observation"][:13]])
    step["info"]["qvel"] = obs["observation"][13:]
    step["info"]["goal"] = obs["desired_goal"]
    return step


def antmaze_umaze(episodes: int = 3, steps: int = 40, seed: int = 123):
    import minari

    env = _make("AntMaze_UMaze-v4", maze_map=ANTMAZE_COLLECT_UMAZE, continuing_task=True, reset_target=False)
    collector = minari.DataCollector(env, step_data_callback=_callback(_antmaze_infos), record_infos=True)
    rng = np.random.default_rng(seed)
    for ep in range(episodes):
        collector.reset(seed=seed + ep)  # the script increments the seed at every reset
        for _ in range(steps):
            collector.step(np.clip(0.2 * rng.standard_normal(8), -1, 1).astype(np.float32))
    eval_spec = copy.deepcopy(env.spec)
    eval_spec.kwargs["maze_map"] = ANTMAZE_EVAL_UMAZE
    ds = _create(
        collector,
        dataset_id="D4RL/antmaze/umaze-v1",
        eval_env=eval_spec,
        algorithm_name="QIteration+SAC",
        code_permalink="https://github.com/rodrigodelazcano/d4rl-minari-dataset-generation",
        author="Alex Davey",
        author_email="alexdavey0@gmail.com",
        ref_min_score=0.0,  # replica values: the script computes them with its expert policy
        ref_max_score=1.0,
    )
    collector.close()
    return ds


def _pointmaze_infos(env, obs, step):  # create_pointmaze_dataset.py PointMazeStepDataCallback
    if step["info"]["success"]:
        step["truncated"] = True
    step["info"]["qpos"] = obs["observation"][:2]
    step["info"]["qvel"] = obs["observation"][2:]
    step["info"]["goal"] = obs["desired_goal"]
    return step


def _next_cell_xy(maze, xy, goal_xy):
    """Centre of the next cell on a shortest cell path from ``xy`` to ``goal_xy`` (breadth-first search)."""
    m = maze.maze_map
    start, goal = tuple(maze.cell_xy_to_rowcol(xy)), tuple(maze.cell_xy_to_rowcol(goal_xy))
    prev, todo = {start: None}, deque([start])
    while todo:
        c = todo.popleft()
        for d in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            n = (c[0] + d[0], c[1] + d[1])
            if m[n[0]][n[1]] != 1 and n not in prev:
                prev[n] = c
                todo.append(n)
    c = goal
    while prev.get(c) not in (None, start):
        c = prev[c]
    return goal_xy if c in (goal, start) else maze.cell_rowcol_to_xy(np.array(c))


def pointmaze_umaze(total_steps: int = 500, seed: int = 123):
    import minari

    env = _make("PointMaze_UMaze-v3", continuing_task=True, reset_target=True, max_episode_steps=1_000_000)
    collector = minari.DataCollector(env, step_data_callback=_callback(_pointmaze_infos), record_infos=True)
    obs, _ = collector.reset(seed=seed)
    rng, maze = np.random.default_rng(seed), env.unwrapped.maze
    for _ in range(total_steps):
        target = _next_cell_xy(maze, obs["achieved_goal"], obs["desired_goal"])
        action = 10.0 * (target - obs["achieved_goal"]) - 1.0 * obs["observation"][2:]
        action = np.clip(action + 0.5 * rng.standard_normal(2), -1, 1).astype(np.float32)  # the script's noise, clip
        obs, *_ = collector.step(action)
    eval_env = _make("PointMaze_UMaze-v3", maze_map=POINTMAZE_EVAL_UMAZE, continuing_task=True, reset_target=False)
    ds = _create(
        collector,
        dataset_id="D4RL/pointmaze/umaze-v2",
        eval_env=eval_env,
        algorithm_name="QIteration",
        code_permalink="https://github.com/rodrigodelazcano/d4rl-minari-dataset-generation",
        author="Rodrigo de Lazcano",
        author_email="rperezvicente@farama.org",
        ref_min_score=20.0,  # replica values (the script's eval-env expert computes them)
        ref_max_score=200.0,
    )
    eval_env.close()
    collector.close()
    return ds


def mujoco_hopper(dataset_id: str = "mujoco/hopper/medium-v0", episodes: int = 3, seed: int = 123):
    import minari

    env = gym.make("Hopper-v5")
    env.spec.kwargs = {}  # as the script: "overwrite the spec for the dataset"
    collector = minari.DataCollector(env, record_infos=False)
    rng = np.random.default_rng(seed)
    for ep in range(episodes):
        collector.reset(seed=seed + ep)
        for _ in range(30):
            _, _, term, trunc, _ = collector.step(rng.uniform(-1, 1, 3).astype(np.float32))
            if term or trunc:
                break
    ds = _create(
        collector,
        dataset_id=dataset_id,
        algorithm_name="sb3/SAC",
        code_permalink=PERMALINK,
        author="kallinteris andreas",
        author_email="kallinteris@protonmail.com",
        requirements=["mujoco==3.2.3", "gymnasium>=1.0.0"],
        description="replica of Minari's mujoco/hopper/medium-v0",
        ref_min_score=-19.5,  # replica values; the script computes them with random and expert policies
        ref_max_score=3100.0,
    )
    collector.close()
    return ds


def _adroit_infos(env, obs, step):
    """scripts/adroit/utils.py AdroitStepDataCallback stores ``env.get_env_state()`` (qpos, qvel, door_body_pos);
    Minari 0.5 keeps only the standard step keys, so it goes into the infos, with ``success`` at reset too (the
    env's reset info has none and Minari 0.5 needs one info structure per episode)."""
    step["info"] = {"success": bool(step["info"].get("success", False))}
    step["info"]["state"] = {k: np.asarray(v) for k, v in env.unwrapped.get_env_state().items()}
    return step


def door_human(episodes: int = 2, steps: int = 20, seed: int = 123):
    import minari

    env = _make("AdroitHandDoor-v1", max_episode_steps=300)
    collector = minari.DataCollector(env, step_data_callback=_callback(_adroit_infos), record_infos=True)
    rng = np.random.default_rng(seed)
    for ep in range(episodes):
        collector.reset(seed=seed + ep)
        for _ in range(steps):
            collector.step(rng.uniform(-1, 1, 28).astype(np.float32))
    ds = _create(
        collector,
        dataset_id="D4RL/door/human-v2",
        code_permalink="hhttps://github.com/Farama-Foundation/minari-dataset-generation-scripts",  # sic
        author="Rodrigo de Lazcano",
        author_email="rperezvicente@farama.org",
    )
    collector.close()
    return ds


def kitchen_mixed(episodes: int = 2, steps: int = 10, seed: int = 123):
    """scripts/kitchen/create_franka_dataset.py: ``FrankaKitchen-v1`` with ``remove_task_when_completed=False,
    terminate_on_tasks_completed=False``, the mixed tasks, ``max_episode_steps=450``; no infos, no ``eval_env``,
    no reference returns (its callback's ``ctrl`` key is not a step key Minari 0.5 stores)."""
    import minari

    tasks = ["microwave", "kettle", "bottom burner", "light switch"]
    env = _make(
        "FrankaKitchen-v1",
        remove_task_when_completed=False,
        terminate_on_tasks_completed=False,
        tasks_to_complete=tasks,
        max_episode_steps=450,
    )
    collector = minari.DataCollector(env, record_infos=False)
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        collector.reset(seed=seed)  # the script resets every demo with seed 123
        for _ in range(steps):
            collector.step(np.clip(rng.uniform(-1, 1, 9), -0.999, 0.999).astype(np.float32))
    ds = _create(
        collector,
        dataset_id="D4RL/kitchen/mixed-v2",
        code_permalink="https://github.com/rodrigodelazcano/d4rl-minari-dataset-generation",
        author="Rodrigo de Lazcano",
        author_email="rperezvicente@farama.org",
    )
    collector.close()
    return ds


BUILDERS = {
    "D4RL/antmaze/umaze-v1": antmaze_umaze,
    "D4RL/pointmaze/umaze-v2": pointmaze_umaze,
    "mujoco/hopper/medium-v0": mujoco_hopper,
    "D4RL/door/human-v2": door_human,
    "D4RL/kitchen/mixed-v2": kitchen_mixed,
}
