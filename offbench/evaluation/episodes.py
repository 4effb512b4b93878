"""What every evaluation backend shares (JAX-free): results, success, scores, reset seeds, the env factory.

Reset seeds: episode ``j`` of run seed ``s`` starts from ``reset_seed("evaluation", s, j)``, a function of
the seed's *value*, so separate runs of seeds 0-4 and 5-9 get different start states and seed 3 gets the
same starts whether it runs alone or with others.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from offbench import envs

DEFAULT_WIDTH = 10  # episodes of one seed stepped together (the act batch per seed)
EVAL_STREAM = "evaluation"


@dataclasses.dataclass
class EvalResult:
    returns: np.ndarray  # (n_seeds, episodes)
    successes: np.ndarray  # (n_seeds, episodes) bool
    lengths: np.ndarray  # (n_seeds, episodes)

    @classmethod
    def empty(cls, n_seeds: int, episodes: int) -> EvalResult:
        return cls(
            np.zeros((n_seeds, episodes)), np.zeros((n_seeds, episodes), bool), np.zeros((n_seeds, episodes), np.int64)
        )


def episode_success(info: dict) -> bool:
    if "success" in info:
        return bool(np.any(info["success"]))
    if "is_success" in info:
        return bool(np.any(info["is_success"]))
    return False


def eval_reset_seed(seed: int, episode: int) -> int:
    return envs.reset_seed(EVAL_STREAM, seed, episode)


def normalized_score(returns, successes, score_type: str, ref_min: float, ref_max: float):
    """D4RL-normalised score per episode: 100 (R - random) / (expert - random); success: 100 x success."""
    if score_type == "success":
        return 100.0 * np.asarray(successes, np.float64)
    return 100.0 * (np.asarray(returns, np.float64) - ref_min) / (ref_max - ref_min)


def success_radius(source) -> float | None:
    """The goal radius that ends an episode in the source's env: its registered task's ``goal_radius`` (AntMaze:
    D4RL's evaluation, ``ANTMAZE_GOAL_RADIUS`` = 0.5 m), None for every other env (their episodes end as the
    environment ends them; D4RL's own AntMaze task ends them itself)."""
    from offbench.data.suites import goal_radius

    radius = goal_radius(source.env_id)
    return None if radius is None else float(radius)


def maze2d_goal(source) -> tuple | None:
    """(x, y, radius) of D4RL's fixed goal for Minari's ports of a task with a ``fixed_goal_radius`` (maze2d:
    D4RL/pointmaze/*) evaluated in Gymnasium-Robotics' PointMaze: the centre of the map's "g" cell (PointMaze's
    default maze_size_scaling, 1 m), the goal their rewards are relabelled to (offbench.data.hosted). None for every
    other task (rebuilt data keeps the evaluation its reference returns were measured in)."""
    task = source.task
    if task is None or task.fixed_goal_radius is None or not str(source.env_id).startswith("PointMaze"):
        return None
    if source.kind == "rebuilt" or source.dataset.metadata.get("source") != "minari":
        return None
    from offbench.data.tasks import maze_cell_xy

    maze = source.env_kwargs["maze_map"]
    cell = next((i, j) for i, row in enumerate(maze) for j, c in enumerate(row) if c == "g")
    return (*maze_cell_xy(maze, cell, 1.0), task.fixed_goal_radius)


def env_factory_for(source) -> envs.EnvFactory:
    """A picklable factory of the source's evaluation environment (AntMaze: ends at the goal, D4RL's radius;
    maze2d: D4RL's fixed goal and 0.5 m reward)."""
    return envs.EnvFactory(
        env_id=source.env_id,
        env_kwargs=dict(source.env_kwargs or {}),
        max_episode_steps=source.max_episode_steps,
        spec_json=source.eval_env_spec,
        goal_radius=success_radius(source),
        fixed_goal=maze2d_goal(source),
    )
