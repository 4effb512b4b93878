"""Creating evaluation / interaction environments (Gymnasium, Gymnasium-Robotics)."""
from __future__ import annotations

import json
import warnings

import numpy as np

from offbench.errors import OffbenchError

_REGISTERED = False


def _register_all():
    global _REGISTERED
    if not _REGISTERED:
        import gymnasium as gym
        try:
            import gymnasium_robotics
            gym.register_envs(gymnasium_robotics)
        except ImportError:  # pragma: no cover - a dependency, but keep plain Gymnasium usable
            pass
        _REGISTERED = True


def make_env(env_id: str, env_kwargs: dict | None = None, max_episode_steps: int | None = None):
    import gymnasium as gym

    _register_all()
    kwargs = dict(env_kwargs or {})
    if max_episode_steps:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return gym.make(env_id, **kwargs)
        except gym.error.Error as exc:
            raise OffbenchError(f"cannot create environment {env_id!r}: {exc}") from exc


def make_env_from_spec(spec_json: str):
    """An environment from a Minari ``eval_env_spec``/``env_spec`` (a Gymnasium EnvSpec as JSON)."""
    import gymnasium as gym

    _register_all()
    spec = gym.envs.registration.EnvSpec.from_json(spec_json) if isinstance(spec_json, str) else spec_json
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(spec)


def env_description(spec_json: str) -> dict:
    try:
        d = json.loads(spec_json)
        return {"env_id": d.get("id"), "max_episode_steps": d.get("max_episode_steps")}
    except Exception:
        return {}


class ObsAdapter:
    """Turns an environment observation (array or dict) into the flat vector the dataset stores."""

    def __init__(self, obs_keys=None, mean=None, std=None):
        self.obs_keys = list(obs_keys) if obs_keys else None
        self.mean, self.std = mean, std

    def raw(self, obs) -> np.ndarray:
        if isinstance(obs, dict):
            return _flat_nested(obs, self.obs_keys)
        return np.asarray(obs, np.float32).reshape(-1)

    def __call__(self, obs) -> np.ndarray:
        x = self.raw(obs)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.astype(np.float32)


def _flat_nested(obs: dict, keys):
    """One observation dict flattened as :func:`offbench.data.loaders.flatten_observation` flattens a batch."""
    ks = keys if keys else sorted(obs)
    missing = [k for k in ks if k not in obs]
    if missing:
        raise OffbenchError(f"observation has no keys {missing} (it has {sorted(obs)}); fix the suite's obs_keys")
    parts = []
    for k in ks:
        v = obs[k]
        parts.append(_flat_nested(v, None) if isinstance(v, dict) else np.asarray(v, np.float32).reshape(-1))
    return np.concatenate(parts)
