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


def is_antmaze(env_id: str | None) -> bool:
    return bool(env_id) and str(env_id).startswith("AntMaze")


def success_radius(source) -> float | None:
    """The goal radius that ends an AntMaze episode (D4RL's evaluation: the suite's ``ANTMAZE_GOAL_RADIUS``,
    0.5 m), None for every other task (their episodes end as the environment ends them)."""
    if not is_antmaze(source.env_id):
        return None
    from offbench.data.suites import ANTMAZE_GOAL_RADIUS

    return float(ANTMAZE_GOAL_RADIUS)


def env_factory_for(source) -> envs.EnvFactory:
    """A picklable factory of the source's evaluation environment (AntMaze: ends at the goal, D4RL's radius)."""
    return envs.EnvFactory(
        env_id=source.env_id,
        env_kwargs=dict(source.env_kwargs or {}),
        max_episode_steps=source.max_episode_steps,
        spec_json=source.eval_env_spec,
        goal_radius=success_radius(source),
    )
