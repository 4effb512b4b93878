"""Writing a rebuilt dataset as a real Minari dataset, so it is read through the same Minari loader
a downloaded dataset goes through."""
from __future__ import annotations

import json
import warnings

import numpy as np


def write_minari(dataset_id: str, episodes: list[dict], env, eval_env=None, *, ref_min_score: float | None = None,
                 ref_max_score: float | None = None, description: str = "", provenance: dict | None = None,
                 algorithm_name: str = "offbench-rebuild"):
    """Create Minari dataset ``dataset_id`` (replacing an existing one) from in-memory episodes.

    Each episode is a dict with ``observations`` (T+1 rows, or a dict of such arrays for dict spaces),
    ``actions`` (T, act_dim), ``rewards``, ``terminations``, ``truncations`` (T,). ``env``/``eval_env``
    are Gymnasium ids, specs or environments. ``provenance`` (JSON-serialisable: policy files, recipe,
    seed, behaviour returns, ...) is stored in the dataset's metadata together with ``rebuilt: true``.
    """
    import minari
    from minari.data_collector import EpisodeBuffer

    if dataset_id in minari.list_local_datasets():
        minari.delete_dataset(dataset_id)  # Minari refuses to overwrite
    buffers = []
    for i, ep in enumerate(episodes):
        obs = ep["observations"]
        obs = {k: _as_array(v) for k, v in obs.items()} if isinstance(obs, dict) else _as_array(obs)
        buffers.append(EpisodeBuffer(
            id=i, observations=obs, actions=np.asarray(ep["actions"], np.float32),
            rewards=np.asarray(ep["rewards"], np.float64), terminations=np.asarray(ep["terminations"], bool),
            truncations=np.asarray(ep["truncations"], bool), infos=ep.get("infos") or {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env, eval_env=eval_env if eval_env is not None else env,
            algorithm_name=algorithm_name, author="offbench", author_email="offbench@localhost",
            code_permalink="offbench (local rebuild)", description=description or f"{dataset_id}, rebuilt locally",
            ref_min_score=ref_min_score, ref_max_score=ref_max_score)
    ds.storage.update_metadata({"rebuilt": True, "provenance": json.dumps(provenance or {}, default=str)})
    return ds


def _as_array(x):
    if isinstance(x, dict):
        return {k: _as_array(v) for k, v in x.items()}
    a = np.asarray(x)
    return a.astype(np.float32) if a.dtype == np.float64 else a
