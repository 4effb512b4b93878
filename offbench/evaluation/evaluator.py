"""Evaluation of N seeds' policies on Gymnasium environments with the deterministic action.

All seeds are evaluated in lockstep: one jitted, vmapped ``act`` call per environment step for
``n_seeds x width`` environments; episodes run in waves of ``width`` per seed. Environments are created
once per run and reused. Episode ``j`` of seed index ``s`` always starts from reset seed
``base + 1000 * s + j``, so evaluations are reproducible.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class EvalResult:
    returns: np.ndarray      # (n_seeds, episodes)
    successes: np.ndarray    # (n_seeds, episodes) bool
    lengths: np.ndarray      # (n_seeds, episodes)


def episode_success(info: dict) -> bool:
    if "success" in info:
        return bool(np.any(info["success"]))
    if "is_success" in info:
        return bool(np.any(info["is_success"]))
    return False


class Evaluator:
    def __init__(self, env_factory: Callable, obs_adapter, act_fn: Callable, n_seeds: int, episodes: int,
                 width: int | None = None, seed_base: int = 1_000_000):
        """``act_fn(states, obs[n_seeds, width, obs_dim]) -> actions`` (jitted, vmapped over seeds)."""
        self.episodes = int(episodes)
        self.n_seeds = int(n_seeds)
        self.width = int(min(width or 10, self.episodes)) if self.episodes > 0 else 0
        self.env_factory = env_factory
        self.obs_adapter = obs_adapter
        self.act_fn = act_fn
        self.seed_base = seed_base
        self.envs = None

    def _ensure_envs(self):
        if self.envs is None:
            self.envs = [[self.env_factory() for _ in range(self.width)] for _ in range(self.n_seeds)]

    def __call__(self, states) -> EvalResult:
        n, w, E = self.n_seeds, self.width, self.episodes
        returns = np.zeros((n, E))
        successes = np.zeros((n, E), bool)
        lengths = np.zeros((n, E), np.int64)
        if E == 0:
            return EvalResult(returns, successes, lengths)
        self._ensure_envs()
        for start in range(0, E, w):
            ids = list(range(start, min(start + w, E)))
            active = np.zeros((n, w), bool)
            obs = None
            for s in range(n):
                for k, j in enumerate(ids):
                    o, _ = self.envs[s][k].reset(seed=self.seed_base + 1000 * s + j)
                    x = self.obs_adapter(o)
                    if obs is None:
                        obs = np.zeros((n, w, x.shape[0]), np.float32)
                    obs[s, k] = x
                    active[s, k] = True
            while active.any():
                actions = np.asarray(self.act_fn(states, jnp.asarray(obs)))
                for s in range(n):
                    for k, j in enumerate(ids):
                        if not active[s, k]:
                            continue
                        o, r, term, trunc, info = self.envs[s][k].step(actions[s, k])
                        returns[s, j] += float(r)
                        lengths[s, j] += 1
                        if episode_success(info):
                            successes[s, j] = True
                        obs[s, k] = self.obs_adapter(o)
                        if term or trunc:
                            active[s, k] = False
        return EvalResult(returns, successes, lengths)

    def close(self):
        for row in self.envs or []:
            for env in row:
                env.close()
        self.envs = None


def normalized_score(returns, successes, score_type: str, ref_min: float, ref_max: float):
    """D4RL-normalised score per episode: 100 (R - random) / (expert - random); success: 100 x success."""
    if score_type == "success":
        return 100.0 * np.asarray(successes, np.float64)
    return 100.0 * (np.asarray(returns, np.float64) - ref_min) / (ref_max - ref_min)


def make_act_fn(agent_act):
    """Jitted deterministic act for all seeds at once: states (vmapped) x obs[n_seeds, B, obs_dim]."""
    key = jax.random.PRNGKey(0)

    def one(state, obs):
        return agent_act(state, obs, key, True)

    return jax.jit(jax.vmap(one))
